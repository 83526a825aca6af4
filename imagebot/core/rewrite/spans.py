"""Exact positions in the file: slots from scalar nodes, places to add or drop a key."""

from __future__ import annotations

import re

from imagebot.core.rewrite.documents import MappingNode, Node, ScalarNode, is_null, style_of
from imagebot.core.rewrite.targets import KeyInsert, KeyRemoval, Slot, YamlPath

_REST_OF_LINE = re.compile(r"[ \t]*(?:#[^\r\n]*)?(?=\r?\n|$)")
_PROPERTIES = re.compile(r"(?:[&!][^ \t\r\n]*[ \t\r\n]+)+")


def scalar_value(node: ScalarNode) -> str:
    """The string a scalar holds; a null (``~``, ``null``, empty) is the empty string."""
    return "" if is_null(node) else str(node.value)


def slot(
    text: str,
    base: int,
    base_line: int,
    node: ScalarNode,
    role: str,
    path: YamlPath,
    *,
    hex_digest: bool = False,
    document: int = 0,
) -> Slot:
    """A slot for ``node``, whose marks are relative to the chunk starting at ``base``."""
    start = base + node.start_mark.index
    end = base + node.end_mark.index
    # The node starts at its properties ("&anchor !!str 'v'"); the value comes after them.
    properties = _PROPERTIES.match(text, start, end)
    if properties:
        start = properties.end()
    style = style_of(node)
    if style in ("|", ">"):
        # A block scalar's end mark lies past its trailing line breaks and indentation;
        # keep those out of the span so a splice never touches them.
        raw = text[start:end]
        end = start + len(raw.rstrip(" \t\r\n"))
    return Slot(
        role=role,
        start=start,
        end=end,
        raw=text[start:end],
        style=style,
        value=scalar_value(node),
        path=path,
        line=base_line + node.start_mark.line + 1,
        hex_digest=hex_digest,
        document=document,
    )


def _one_line(node: Node) -> bool:
    return bool(
        isinstance(node, ScalarNode)
        and style_of(node) not in ("|", ">")
        and node.start_mark.line == node.end_mark.line
    )


def _newline_before(text: str, at: int) -> str:
    """The line break style the file uses near ``at`` (CRLF files stay CRLF)."""
    nl = text.find("\n", at)
    if nl < 0:
        nl = text.rfind("\n", 0, at)
    if nl > 0 and text[nl - 1] == "\r":
        return "\r\n"
    return "\n"


def key_insert(
    text: str,
    base: int,
    mapping: MappingNode,
    anchor_key: Node,
    anchor_value: Node,
    *,
    role: str,
    key: str,
    mapping_path: YamlPath,
    document: int = 0,
) -> KeyInsert | None:
    """Where ``key: value`` can go right after the ``anchor`` entry of ``mapping``, if anywhere."""
    value_end = base + anchor_value.end_mark.index
    if mapping.flow_style:
        if not _one_line(anchor_value):
            return None
        return KeyInsert(role, key, value_end, ", ", mapping_path, document)
    if not _one_line(anchor_value):
        return None
    rest = _REST_OF_LINE.match(text, value_end)
    if rest is None:
        return None
    at = rest.end()
    indent = " " * anchor_key.start_mark.column
    return KeyInsert(role, key, at, _newline_before(text, at) + indent, mapping_path, document)


def key_removal(
    text: str,
    base: int,
    mapping: MappingNode,
    key_node: Node,
    value_node: Node,
    *,
    key: str,
    mapping_path: YamlPath,
    document: int = 0,
) -> KeyRemoval | None:
    """The whole line of a ``key: value`` entry that sits alone on its line, if it does."""
    if mapping.flow_style or not _one_line(value_node):
        return None
    key_start = base + key_node.start_mark.index
    line_start = text.rfind("\n", 0, key_start) + 1
    if text[line_start:key_start].strip(" "):
        return None  # "- digest: ..." opens a sequence item; dropping it would drop the item.
    rest = _REST_OF_LINE.match(text, base + value_node.end_mark.index)
    if rest is None:
        return None
    end = rest.end()
    if end < len(text):
        end = text.index("\n", end) + 1
    elif line_start > 0:
        line_start -= 2 if text[line_start - 2 : line_start] == "\r\n" else 1
    return KeyRemoval(line_start, end, text[line_start:end], key, mapping_path, document)

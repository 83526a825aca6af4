"""Configuration YAML with line numbers: load one mapping, turn validation errors into
``file:line: field: message`` lines. Shared by policy files and registries.yaml."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from imagebot.errors import PolicyError

#: Largest policy file or registries.yaml read. Real ones are a few KiB; the cap bounds the
#: parse time of a file nobody meant to write (a pasted log, a megabyte-long comment).
MAX_FILE_BYTES = 1024 * 1024

#: Most nodes a configuration document may expand to through aliases. An alias bomb
#: ("billion laughs": each level lists the previous one ten times) loads in linear time but
#: expands exponentially; environment files stop at the same number (rewrite.locate).
MAX_NODES = 200_000


class TooManyNodes(ValueError):
    """A document expands, through aliases, to more than MAX_NODES nodes."""


def load_mapping(text: str, *, source: str, what: str) -> CommentedMap | None:
    """The file's single document as a mapping with line info; None for an empty file.

    Duplicate keys are errors, not last-wins. ``what`` names the file kind in messages.
    A text over MAX_FILE_BYTES is refused before parsing.
    """
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        limit = f"{MAX_FILE_BYTES // 1024} KiB"
        raise PolicyError([f"{source}:1: a {what} may be at most {limit}; this one is larger"])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        docs = [d for d in yaml.load_all(text) if d is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        # ruamel quotes both values of a duplicate key: an inline password would be printed.
        problem = re.sub(r'(found duplicate key ".*?") with value .*', r"\1", problem)
        raise PolicyError([f"{source}:{line}: invalid YAML: {problem}"]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad characters)
        raise PolicyError([f"{source}:1: invalid YAML: {exc}"]) from None
    if not docs:
        return None
    if len(docs) > 1:
        raise PolicyError(
            [f"{source}:1: expected one YAML document in a {what}, found {len(docs)}"]
        )
    doc = docs[0]
    if not isinstance(doc, CommentedMap):
        raise PolicyError([f"{source}:1: a {what} must be a mapping of fields"])
    return doc


def plain(node: Any) -> Any:
    """ruamel's round-trip containers as plain dicts and lists, for validation."""
    if isinstance(node, CommentedMap):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [plain(v) for v in node]
    return node


def expanded_size(doc: Any, *, limit: int = MAX_NODES) -> int:
    """How many nodes ``doc`` holds once every alias is expanded, without expanding them.

    Aliases share one object per anchor, so the loaded document is a graph of a few
    distinct containers; each container's size is computed once. Raises TooManyNodes past
    ``limit``, or for an alias inside its own anchor (a document that never ends).
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise TooManyNodes("an alias refers to a node that contains it")
        open_.add(key)
        children = node.values() if isinstance(node, CommentedMap) else node
        total = 1 + sum(size(child) for child in children)
        open_.discard(key)
        if total > limit:
            raise TooManyNodes(f"more than {limit:,} nodes once aliases are expanded")
        sizes[key] = total
        return total

    return size(doc)


def plain_mapping(doc: CommentedMap, *, source: str) -> dict[str, Any]:
    """:func:`plain` for a loaded file, refusing one that aliases expand past MAX_NODES
    (an alias bomb) with a PolicyError naming the file."""
    try:
        expanded_size(doc)
    except TooManyNodes as exc:
        raise PolicyError([f"{source}:1: too many aliases to expand safely: {exc}"]) from None
    out: dict[str, Any] = plain(doc)
    return out


def validation_problems(source: str, doc: CommentedMap, exc: ValidationError) -> list[str]:
    """One ``file:line: field: message`` per root-cause error of a pydantic validation."""
    return [_problem(source, doc, err) for err in _root_causes(exc.errors())]


def problem_at(source: str, doc: CommentedMap, loc: tuple[Any, ...], message: str) -> str:
    return f"{source}:{line_of(doc, loc)}: {dotted(loc) or '(top level)'}: {message}"


def _root_causes(errors: list[Any]) -> list[Any]:
    """Drop "too short" errors that only echo an invalid item below them (pydantic reports
    both the bad item and that the list, without it, is empty)."""
    locs = [tuple(e["loc"]) for e in errors]
    return [
        e
        for e in errors
        if not (
            e["type"] == "too_short"
            and any(len(o) > len(e["loc"]) and o[: len(e["loc"])] == tuple(e["loc"]) for o in locs)
        )
    ]


def _problem(source: str, doc: CommentedMap, err: Any) -> str:
    loc = tuple(err["loc"])
    # pydantic adds validator names and a union member's discriminator ("basic") to the
    # location; neither is something the user wrote.
    path = tuple(
        p
        for i, p in enumerate(loc)
        if not (isinstance(p, str) and p.startswith("function-"))
        and not _is_union_tag(doc, loc[:i], p)
    )
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] in ("literal_error", "enum"):
            message += f" (got {err.get('input')!r})"
    return problem_at(source, doc, path, message)


def _is_union_tag(doc: Any, parent: tuple[Any, ...], part: Any) -> bool:
    node = doc
    for p in parent:
        if (isinstance(node, CommentedMap) and p in node) or (
            isinstance(node, CommentedSeq) and isinstance(p, int) and p < len(node)
        ):
            node = node[p]
        else:
            return False
    return isinstance(node, CommentedMap) and part not in node and node.get("type") == part


def dotted(loc: tuple[Any, ...]) -> str:
    """``images[0].tags.include`` for ("images", 0, "tags", "include")."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def written_lines(doc: CommentedMap, *, depth: int = 4) -> dict[str, int]:
    """The 1-based line of every key and list item down to ``depth`` levels, by dotted path
    (``images[3].tags.include``); ``""`` is the document's own line. Read with
    :func:`line_at`, it answers as :func:`line_of` does, from one walk of the document."""
    out = {"": doc.lc.line + 1}

    def walk(node: Any, path: str, depth: int) -> None:
        if depth == 0:
            return
        if isinstance(node, CommentedMap):
            for key, value in node.items():
                here = f"{path}.{key}" if path else str(key)
                out[here] = node.lc.key(key)[0] + 1
                walk(value, here, depth - 1)
        elif isinstance(node, CommentedSeq):
            for i, value in enumerate(node):
                here = f"{path}[{i}]"
                out[here] = node.lc.item(i)[0] + 1
                walk(value, here, depth - 1)

    walk(doc, "", depth)
    return out


def line_at(lines: Mapping[str, int], where: str) -> int | None:
    """The line of ``where`` in :func:`written_lines`, or of the deepest part of it that is
    written (a field left out is reported at its entry); None for no part at all."""
    while where not in lines:
        cut = max(where.rfind("."), where.rfind("["))
        if cut < 0:
            return lines.get("")
        where = where[:cut]
    return lines[where]


def line_of(doc: Any, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest node of ``loc`` that exists in the document."""
    line: int = doc.lc.line + 1
    node = doc
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line

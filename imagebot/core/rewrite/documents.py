"""Parse YAML into nodes whose marks give exact character offsets, one document at a time.

libyaml through PyYAML's ``CSafeLoader`` composes node trees about 2x faster than
ruamel.yaml.clib's C parser and 18x faster than ruamel.yaml's pure parser on the corpus
(see docs/rewrite.md); its marks are character offsets into the ``str`` it is given, except
that libyaml drops a leading BOM without counting it, so the BOM is stripped here and offsets
are shifted back.

A file is split into its documents at ``---`` lines before parsing: YAML forbids that line
inside any scalar (``c-forbidden``), so the split is exact, and a multi-document manifest of
which one Deployment mentions a watched image parses one document, not its CRDs.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Literal

import yaml

from imagebot.core.rewrite.scalars import reads_as_string
from imagebot.errors import EditError

Node = yaml.Node
ScalarNode = yaml.ScalarNode
MappingNode = yaml.MappingNode
SequenceNode = yaml.SequenceNode

try:
    from yaml import CSafeLoader as _Base
except ImportError:  # PyYAML built without libyaml: same marks, ten times slower
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

BOM = "\ufeff"
STR_TAG = "tag:yaml.org,2002:str"
#: Untagged plain scalars keep this tag: their type is worked out only where it matters.
PLAIN_TAG = "tag:imagebot,plain"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


class _Loader(_Base):
    """libyaml with the implicit-type resolver switched off.

    PyYAML's resolver runs a Python regex per plain scalar and takes a third of the parse
    time; a plain scalar's type only matters for the few that hold a version, and two plain
    scalars with equal text always have equal types, so verification needs no more.
    """

    # Path-based resolvers are never registered; skip PyYAML's bookkeeping for them.
    def descend_resolver(self, current_node: object, current_index: object) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type[Node], value: object, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return PLAIN_TAG if implicit[0] else STR_TAG
        return _SEQ_TAG if kind is SequenceNode else _MAP_TAG


@dataclass(frozen=True)
class Chunk:
    """The text of one or more YAML documents and where it starts in the file."""

    start: int
    end: int
    line: int
    """0-based line of ``start`` in the file."""


def split(text: str) -> list[Chunk]:
    """Cut ``text`` before each ``---`` line; one chunk when directives make that unsafe."""
    body_start = 1 if text.startswith(BOM) else 0
    # A %YAML or %TAG directive belongs to the document after it; keep such files whole.
    if "\n%" in text or text.startswith("%", body_start):
        return [Chunk(body_start, len(text), 0)]
    cuts = [body_start]
    if text.startswith("---", body_start):
        body_start += 3
    at = text.find("\n---", body_start)
    while at >= 0:
        after = text[at + 4 : at + 5]
        if after in ("", " ", "\t", "\r", "\n"):
            cuts.append(at + 1)
        at = text.find("\n---", at + 4)
    cuts.append(len(text))
    chunks: list[Chunk] = []
    line = 0
    for start, end in itertools.pairwise(cuts):
        chunks.append(Chunk(start, end, line))
        line += text.count("\n", start, end)
    return chunks


def _compose(body: str) -> tuple[Node, ...]:
    return tuple(d for d in yaml.compose_all(body, Loader=_Loader) if d is not None)


class _LastLocated:
    """The node trees locate() built for the last text it parsed, until apply() verifies it.

    locate() and then apply() on the same text parse each chunk once. Only one text's trees
    are kept, and apply() takes them out: trees that outlive their file survive into the
    older garbage-collector generations, and every later collection scans their nodes again
    (an earlier cache of 16 chunks across files cost more in collections than it saved).
    A wrong guess only costs a parse: entries are keyed by the chunk's own text.
    """

    def __init__(self) -> None:
        self.text: str | None = None
        self.trees: dict[str, tuple[Node, ...]] = {}

    def keep(self, text: str, body: str, trees: tuple[Node, ...]) -> None:
        if text is not self.text:
            self.text = text
            self.trees = {}
        self.trees[body] = trees

    def take(self, text: str, body: str) -> tuple[Node, ...] | None:
        if text is not self.text:
            return None
        return self.trees.pop(body, None)


_last_located = _LastLocated()


def compose(
    text: str, chunk: Chunk, *, source: str, purpose: Literal["locate", "verify", "edited"]
) -> tuple[Node, ...]:
    """The documents of one chunk; raise :class:`EditError` naming the line if not YAML.

    ``purpose``: ``"locate"`` keeps the trees for the verification of an edit of this same
    text, ``"verify"`` takes them (or parses), ``"edited"`` parses an edited text.
    """
    body = text[chunk.start : chunk.end]
    if purpose == "verify" and (kept := _last_located.take(text, body)) is not None:
        return kept
    try:
        trees = _compose(body)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = chunk.line + (mark.line + 1 if mark else 1)
        raise EditError(f"{source}:{line}: not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise EditError(f"{source}:{chunk.line + 1}: not valid YAML: {exc}") from exc
    if purpose == "locate":
        _last_located.keep(text, body, trees)
    return trees


# An anchor (&name) in a chunk: an alias elsewhere shares its node, so a subtree's own text
# no longer tells what it holds. "&" inside a scalar only costs speed.
_ANCHOR = re.compile(r"&[^\s,\[\]{}]")


def has_anchor(text: str, start: int, end: int) -> bool:
    """An ``&name`` where YAML allows node properties (not ``a&b`` inside a URL)."""
    for m in _ANCHOR.finditer(text, start, end):
        if m.start() == start or text[m.start() - 1] in " \t\r\n[{,":
            return True
    return False


def is_str(node: Node) -> bool:
    """True for a scalar YAML (1.1 and 1.2 alike) reads as a string."""
    if not isinstance(node, ScalarNode):
        return False
    if node.tag == PLAIN_TAG:
        return reads_as_string(str(node.value))
    return bool(node.tag == STR_TAG)


def is_null(node: ScalarNode) -> bool:
    return node.tag == PLAIN_TAG and node.value in _NULLS


def style_of(node: ScalarNode) -> str:
    """``""`` for plain, else the quote or block indicator."""
    return node.style or ""

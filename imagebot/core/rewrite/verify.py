"""Re-parse an edited document and require that exactly the intended values changed.

The old and new node trees are walked in lockstep, aliases expanded, so a scalar shared
through an anchor with some other field shows up as a change at that field's path too.
Without anchors, a subtree whose old text holds no change has the same bytes, hence the same
parse, in the new text and is skipped: verifying costs the depth of the edits, not the file.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from imagebot.core.rewrite.documents import (
    PLAIN_TAG,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    is_str,
)
from imagebot.core.rewrite.kinds import format_path
from imagebot.core.rewrite.splice import Expect
from imagebot.core.rewrite.targets import YamlPath

MAX_VISITS = 1_000_000


class Mismatch(Exception):
    """Where and how the edited document differs from what was intended."""

    def __init__(self, path: YamlPath, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"{format_path(path)}: {detail}")


def _key(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else "?"


def _describe(node: Node) -> str:
    if isinstance(node, ScalarNode):
        if node.tag == PLAIN_TAG:
            kind = "string" if is_str(node) else "non-string (number, bool, null or date)"
        else:
            kind = node.tag.rsplit(":", 1)[-1]
        return f"{kind} {node.value!r}"
    return type(node).__name__.replace("Node", "").lower()


class _Lockstep:
    def __init__(self, expects: Sequence[Expect], changed: Sequence[int] | None) -> None:
        self.changed = changed
        self.values = {e.path: e.value for e in expects if e.action == "set"}
        self.inserted: dict[YamlPath, dict[str, str]] = {}
        self.removed: dict[YamlPath, set[str]] = {}
        for e in expects:
            if e.action == "insert":
                self.inserted.setdefault(e.path[:-1], {})[str(e.path[-1])] = str(e.value)
            elif e.action == "remove":
                self.removed.setdefault(e.path[:-1], set()).add(str(e.path[-1]))
        self.seen: set[YamlPath] = set()
        self.visits = 0

    def node(self, old: Node, new: Node, path: YamlPath) -> None:
        self.visits += 1
        if self.visits > MAX_VISITS:
            raise Mismatch(path, "too many aliases to verify")
        if self.changed is not None and not self._touched(old):
            return
        if path in self.values:
            self.seen.add(path)
            want = self.values[path]
            if not (is_str(new) and new.value == want):
                raise Mismatch(path, f"reads as {_describe(new)}, not string {want!r}")
            return
        if type(old) is not type(new):
            raise Mismatch(path, f"{_describe(old)} became {_describe(new)}")
        if isinstance(old, ScalarNode):
            if old.tag != new.tag or old.value != new.value:
                raise Mismatch(path, f"{_describe(old)} became {_describe(new)}")
        elif isinstance(old, SequenceNode):
            if len(old.value) != len(new.value):
                raise Mismatch(path, "sequence length changed")
            for index, (o, n) in enumerate(zip(old.value, new.value, strict=True)):
                self.node(o, n, (*path, index))
        elif isinstance(old, MappingNode) and isinstance(new, MappingNode):
            self.mapping(old, new, path)

    def _touched(self, old: Node) -> bool:
        """Whether a change offset lies within (or at the edges of) ``old``'s span."""
        assert self.changed is not None
        i = bisect.bisect_left(self.changed, old.start_mark.index)
        return i < len(self.changed) and self.changed[i] <= old.end_mark.index

    def mapping(self, old: MappingNode, new: MappingNode, path: YamlPath) -> None:
        added = self.inserted.get(path, {})
        dropped = self.removed.get(path, set())
        new_pairs = []
        for k, v in new.value:
            key = _key(k)
            if key in added:
                if not (is_str(v) and v.value == added[key]):
                    raise Mismatch((*path, key), f"added as {_describe(v)}, not {added[key]!r}")
                self.seen.add((*path, key))
                continue
            new_pairs.append((k, v))
        old_pairs = [(k, v) for k, v in old.value if _key(k) not in dropped]
        self.seen.update((*path, key) for key in dropped)
        if len(old_pairs) != len(new_pairs):
            raise Mismatch(path, "mapping keys changed")
        for (ok, ov), (nk, nv) in zip(old_pairs, new_pairs, strict=True):
            key = _key(ok)
            if type(ok) is not type(nk):
                raise Mismatch(path, f"key {key!r} changed")
            if isinstance(ok, ScalarNode):
                if ok.value != nk.value or ok.tag != nk.tag:
                    raise Mismatch(path, f"key {key!r} became {_key(nk)!r}")
            else:
                self.node(ok, nk, (*path, key))
            self.node(ov, nv, (*path, key))


def compare(
    old: Sequence[Node],
    new: Sequence[Node],
    expects: Sequence[Expect],
    *,
    changed: Sequence[int] | None = None,
) -> None:
    """Raise :class:`Mismatch` unless ``new`` is ``old`` with exactly ``expects`` applied.

    ``expects`` must all belong to these documents; each document's own are matched.
    ``changed``: sorted offsets (relative to the old documents' text) of every change, when
    the text has no anchors, to skip subtrees no change touches.
    """
    if len(old) != len(new):
        raise Mismatch((), f"{len(old)} documents became {len(new)}")
    for ordinal, (o, n) in enumerate(zip(old, new, strict=True)):
        mine = [e for e in expects if e.document == ordinal]
        step = _Lockstep(mine, changed)
        step.node(o, n, ())
        missing = {e.path for e in mine} - step.seen
        if missing:
            path = min(missing, key=format_path)
            raise Mismatch(path, "the intended change is not there")

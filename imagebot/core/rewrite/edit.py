"""Apply edits: splice every change into the original text, then verify by re-parsing."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from imagebot.core.rewrite import documents, splice, verify
from imagebot.core.rewrite.documents import Chunk, MappingNode, Node
from imagebot.core.rewrite.kinds import format_path
from imagebot.core.rewrite.scalars import check_name, check_version
from imagebot.core.rewrite.splice import Expect, Replacement
from imagebot.core.rewrite.targets import Edit, Target
from imagebot.errors import EditError, InvalidReference


def apply(text: str, edits: Sequence[Edit], *, source: str = "<text>") -> str:
    """``text`` with every edit spliced in; raise :class:`EditError` and change nothing if
    any edit cannot be made exactly.

    ``text`` must be the file's raw bytes decoded as UTF-8 without newline translation
    (``data.decode("utf-8")``; a BOM stays in the string as ``"\\ufeff"``), and the result is
    encoded back the same way, so CRLF, a BOM and a missing final newline round-trip. The
    edits' targets must come from :func:`locate` on this same text.
    """
    changes: list[Replacement] = []
    expects: list[Expect] = []
    for edit in edits:
        _check(text, edit.target, source)
        try:
            check_version(edit.tag, edit.digest)
            if edit.name is not None:
                check_name(edit.name)
        except InvalidReference as exc:
            raise EditError(f"{source}:{edit.target.line}: {exc}") from exc
        planned = splice.plan(text, edit.target, edit.tag, edit.digest, edit.name)
        changes.extend(planned.changes)
        expects.extend(planned.expects)
    changes = _merge(changes, source)
    if not changes:
        return text
    new_text = _splice(text, changes)
    _verify(text, new_text, changes, _merge_expects(expects), source)
    return new_text


def _check(text: str, target: Target, source: str) -> None:
    if target.problem:
        raise EditError(f"{source}:{target.line}: cannot edit {target.field}: {target.problem}")
    for slot in target.slots:
        if text[slot.start : slot.end] != slot.raw:
            raise EditError(f"{source}:{slot.line}: the file changed since it was read")
    removal = target.removal
    if removal is not None and text[removal.start : removal.end] != removal.raw:
        raise EditError(f"{source}:{target.line}: the file changed since it was read")


def _merge(changes: list[Replacement], source: str) -> list[Replacement]:
    """Sorted, without duplicates (one anchored scalar edited through two aliases)."""
    merged: list[Replacement] = []
    for change in sorted(set(changes), key=lambda c: (c.start, c.end)):
        if merged and change.start < merged[-1].end:
            other = merged[-1]
            raise EditError(
                f"{source}:{change.line}: edits of lines {other.line} and {change.line} "
                "write different values into the same text (an alias shared by two images?)"
            )
        if merged and change.start == change.end == merged[-1].start == merged[-1].end:
            # Two keys added at one place (a newTag and a digest): keep their order.
            merged[-1] = Replacement(
                change.start, change.end, merged[-1].new + change.new, change.line
            )
            continue
        merged.append(change)
    return merged


def _merge_expects(expects: list[Expect]) -> list[Expect]:
    seen: dict[tuple[int, int, tuple[object, ...], str], Expect] = {}
    for e in expects:
        seen.setdefault((e.offset, e.document, e.path, e.action), e)
    return list(seen.values())


def _splice(text: str, changes: list[Replacement]) -> str:
    parts: list[str] = []
    pos = 0
    for change in changes:
        parts.append(text[pos : change.start])
        parts.append(change.new)
        pos = change.end
    parts.append(text[pos:])
    return "".join(parts)


def _verify(
    text: str, new_text: str, changes: list[Replacement], expects: list[Expect], source: str
) -> None:
    chunks = documents.split(text)
    new_chunks = documents.split(new_text)
    if len(chunks) != len(new_chunks):
        raise EditError(f"{source}:{changes[0].line}: the edit would change document markers")
    starts = [c.start for c in chunks]
    touched: dict[int, list[Expect]] = {}
    for e in expects:
        touched.setdefault(bisect.bisect_right(starts, e.offset) - 1, []).append(e)
    in_chunk: dict[int, list[Replacement]] = {}
    for change in changes:
        in_chunk.setdefault(bisect.bisect_right(starts, change.start) - 1, []).append(change)
    for index in sorted(touched):
        chunk, new_chunk = chunks[index], new_chunks[index]
        mine = in_chunk.get(index, [])
        changed = None
        if not documents.has_anchor(text, chunk.start, chunk.end):
            changed = sorted(o - chunk.start for c in mine for o in (c.start, c.end))
        _verify_chunk(text, chunk, new_text, new_chunk, touched[index], source, changed, mine)


def _verify_chunk(
    text: str,
    chunk: Chunk,
    new_text: str,
    new_chunk: Chunk,
    expects: list[Expect],
    source: str,
    changed: list[int] | None,
    changes: list[Replacement],
) -> None:
    line = min(e.line for e in expects)
    old_docs = documents.compose(text, chunk, source=source, purpose="verify")
    section = _section(chunk, old_docs, changes) if changed is not None and changes else None
    if section is not None:
        first, last, end = section
        root = old_docs[0]
        assert isinstance(root, MappingNode)
        # Earlier chunks' edits moved this chunk in the new text; its own are all after start.
        start = new_chunk.start + root.value[first][0].start_mark.index
        end = (
            new_chunk.start + end - chunk.start + sum(len(c.new) - c.end + c.start for c in changes)
        )
        new_chunk = Chunk(start, end, chunk.line + root.value[first][0].start_mark.line)
        old_docs = (
            MappingNode(root.tag, root.value[first : last + 1], root.start_mark, root.end_mark),
        )
    try:
        new_docs = documents.compose(new_text, new_chunk, source=source, purpose="edited")
    except EditError as exc:
        raise EditError(f"{source}:{line}: the edit would not parse as YAML ({exc})") from exc
    try:
        verify.compare(old_docs, new_docs, expects, changed=changed)
    except verify.Mismatch as exc:
        edited = {e.path for e in expects}
        reason = exc.detail
        if exc.path not in edited:
            reason = (
                f"{format_path(exc.path)} would change too ({exc.detail}): "
                "the value is shared through a YAML alias"
            )
        else:
            reason = f"{format_path(exc.path)} {exc.detail}"
        raise EditError(f"{source}:{line}: unsafe edit, file left untouched: {reason}") from exc


def _section(
    chunk: Chunk, docs: tuple[Node, ...], changes: list[Replacement]
) -> tuple[int, int, int] | None:
    """The top-level entries ``first..last`` of a chunk's mapping that hold every change, and
    the old offset where the entry after them begins, when re-parsing only their text is
    the same as re-parsing the whole chunk; None otherwise.

    A 3,000-line values.yaml edited in one image block is then parsed again in that block's
    top-level entry, not whole (a quarter of bench/rewrite.py's time went to re-parsing).
    Why it is the same: the text before the entries is unchanged and the old parse shows a
    column-0 key of the document's block mapping where they start, so a parser reaching
    that key is at the top level of that mapping, as it is at the start of the entries
    parsed alone; the text after them is unchanged and starts with another column-0 key
    (or ends the chunk), which ends a plain or block scalar as the end of the text does, and
    a quote or bracket an edit left open makes the section fail to parse. The caller only
    asks for chunks without anchors, so no alias reaches into the section from outside.
    """
    if len(docs) != 1:
        return None
    root = docs[0]
    if not isinstance(root, MappingNode) or root.flow_style or not root.value:
        return None
    keys = [key for key, _ in root.value]
    if any(key.start_mark.column != 0 for key in keys):
        return None
    starts = [chunk.start + key.start_mark.index for key in keys]
    low = min(c.start for c in changes)
    high = max(c.end for c in changes)
    first = bisect.bisect_right(starts, low) - 1
    if first < 0 or low < chunk.start + keys[first].end_mark.index:
        return None  # a change before the first key, or inside a top-level key
    last = bisect.bisect_right(starts, high) - 1
    end = starts[last + 1] if last + 1 < len(starts) else chunk.end
    return first, last, end

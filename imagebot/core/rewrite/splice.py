"""Turn an edit of one target into text changes at exact offsets, and what they should do."""

from __future__ import annotations

from dataclasses import dataclass

from imagebot.core.reference import join_reference
from imagebot.core.rewrite.scalars import (
    _PLAIN_SAFE,
    reads_as_string,
    rewrite_scalar,
    split_reference,
)
from imagebot.core.rewrite.targets import Slot, Target, YamlPath
from imagebot.errors import EditError


@dataclass(frozen=True, order=True)
class Replacement:
    """Replace ``text[start:end]`` with ``new``."""

    start: int
    end: int
    new: str
    line: int


@dataclass(frozen=True)
class Expect:
    """What parsing the edited file must show: one scalar set, one key added or dropped."""

    offset: int
    document: int
    path: YamlPath
    action: str
    """``"set"``, ``"insert"`` or ``"remove"``."""
    value: str | None
    line: int


def render_plain(value: str) -> str:
    """A new scalar's text: plain if YAML reads that as a string, else double-quoted."""
    if _PLAIN_SAFE.match(value) and reads_as_string(value):
        return value
    return '"' + value + '"'


class _Plan:
    def __init__(self, text: str, target: Target) -> None:
        self.text = text
        self.target = target
        self.changes: list[Replacement] = []
        self.expects: list[Expect] = []

    def where(self, line: int | None = None) -> str:
        t = self.target
        return f"{t.source}:{line or t.line}: {t.field}"

    def set(self, slot: Slot, value: str) -> None:
        if value == slot.value:
            return
        new = rewrite_scalar(slot.raw, slot.style, slot.value, value, where=self.where(slot.line))
        if slot.raw == "" and self.text[slot.start - 1 : slot.start] == ":":
            new = " " + new  # "tag:" (null) becomes "tag: 1.2.3"
        self.changes.append(Replacement(slot.start, slot.end, new, slot.line))
        self.expects.append(Expect(slot.start, slot.document, slot.path, "set", value, slot.line))

    def insert(self, role: str, value: str) -> bool:
        insert = self.target.insert(role)
        if insert is None:
            return False
        new = f"{insert.prefix}{insert.key}: {render_plain(value)}"
        self.changes.append(Replacement(insert.at, insert.at, new, self.target.line))
        path = (*insert.mapping_path, insert.key)
        self.expects.append(
            Expect(insert.at, insert.document, path, "insert", value, self.target.line)
        )
        return True


def plan(
    text: str, target: Target, tag: str | None, digest: str | None, name: str | None = None
) -> _Plan:
    """The changes that give ``target`` the version (``tag``, ``digest``) and, for a
    reference a marker owns, the repository ``name``; see :class:`Edit`."""
    p = _Plan(text, target)
    ref = target.slot("ref")
    if ref is not None:
        written = ref.value[len(ref.alias) :]
        old_name, old_tag, _ = split_reference(written)
        new_ref = join_reference(name or old_name, tag if tag is not None else old_tag, digest)
        p.set(ref, ref.alias + new_ref)
        return p
    name_slot = target.slot("name")
    if name_slot is not None and name is not None:
        p.set(name_slot, name)
    tag_slot, digest_slot = target.slot("tag"), target.slot("digest")
    if name_slot is not None and tag_slot is digest_slot is None and not target.inserts:
        return p  # a lone ":name" marker: the name is all this target holds
    if digest_slot is not None and target.digest_only and digest is not None:
        # Pinned by digest alone (Flux ":digest" marker, kustomize "digest:" without
        # "newTag:"): the digest is the whole version; adding a tag would change the kind
        # of pin the file's author chose.
        _set_digest(p, digest_slot, digest)
        return p
    old_tag = tag_slot.value.partition("@")[0] if tag_slot else ""
    new_tag = tag if tag is not None else old_tag or None
    # Helm charts without a digest field take "tag@digest" in their tag (what their
    # "{{ .repository }}:{{ .tag }}" templates need); kustomize has its own digest field.
    digest_in_tag = digest if digest_slot is None and target.insert("digest") is None else None
    if digest_in_tag and not new_tag:
        raise EditError(f"{p.where()}: no field to write digest {digest} into")
    tag_value = join_reference("", new_tag, digest_in_tag).lstrip(":")
    if tag_slot is not None:
        p.set(tag_slot, tag_value)
    elif tag_value and not p.insert("tag", tag_value):
        raise EditError(f"{p.where()}: no tag field to write {tag_value!r} into")
    if digest_slot is not None:
        _set_digest(p, digest_slot, digest)
    elif digest is not None and digest_in_tag is None:
        p.insert("digest", digest)
    return p


def _set_digest(p: _Plan, slot: Slot, digest: str | None) -> None:
    if digest is None:
        if not slot.value:
            return
        removal = p.target.removal
        if removal is not None:
            p.changes.append(Replacement(removal.start, removal.end, "", slot.line))
            path = (*removal.mapping_path, removal.key)
            p.expects.append(
                Expect(removal.start, removal.document, path, "remove", None, slot.line)
            )
            return
        p.set(slot, "")
        return
    if slot.hex_digest:
        algorithm, _, hex_part = digest.partition(":")
        if algorithm != "sha256":
            raise EditError(f"{p.where(slot.line)}: this field holds only sha256 digests")
        p.set(slot, hex_part)
        return
    p.set(slot, digest)

"""The whole real-world corpus: every located reference can be set, and nothing else moves.

The files in shared/corpus/yaml are never written; each test works on the text it
read. Expected values come from the edit requested, and the check that nothing else changed
uses PyYAML's full constructor on the whole file, not imagebot's own verifier.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagebot.core.rewrite import Edit, Target, apply, locate
from imagebot.errors import EditError
from tests.support.corpus import corpus_dir, corpus_files, require_corpus

CORPUS = corpus_dir()
FILES = corpus_files()
DOCS = Path(__file__).resolve().parents[1] / "docs" / "rewrite.md"
NEW_TAG = "10.20.30-imagebot"
NEW_DIGEST = "sha256:" + "ab" * 32
# ``repository[:tag][@digest]`` where the tag's colon comes after the last slash.
REFERENCE = re.compile(r"^(?P<name>[^@]*?)(?::(?P<tag>[\w][\w.-]*))?(?:@(?P<digest>.+))?$")


@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    require_corpus()


def test_the_whole_corpus_is_present() -> None:
    """All 518 corpus files are found, so no corpus test silently runs on nothing."""
    assert len(FILES) == 518, f"{CORPUS}: {len(FILES)} YAML files"


def _ids() -> list[str]:
    return [str(p.relative_to(CORPUS)) for p in FILES]


def _load(text: str) -> list[Any]:
    return list(yaml.load_all(text.lstrip("\ufeff"), Loader=yaml.CSafeLoader))


def _differences(old: Any, new: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path where two constructed YAML values differ (a path per leaf)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in old.keys() | new.keys():
            if key not in old or key not in new:
                out.append((*path, key))
            else:
                out.extend(_differences(old[key], new[key], (*path, key)))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for index, (o, n) in enumerate(zip(old, new, strict=True)):
            out.extend(_differences(o, n, (*path, index)))
        return out
    if type(old) is not type(new) or old != new:
        return [path]
    return []


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


def _version(target: Target) -> tuple[str | None, str | None]:
    """The new version for a target: a tag where it has one, a digest where it pins one
    (a target pinned by a digest alone takes only the digest)."""
    has_tag = target.slot("ref") or target.slot("tag") or target.insert("tag")
    if target.digest_only:
        has_tag = None
    pins = target.digest is not None or target.slot("digest") is not None
    return (NEW_TAG if has_tag else None), (NEW_DIGEST if pins else None)


def _expected_values(target: Target, tag: str | None, digest: str | None) -> dict[Any, str]:
    """Path → string each scalar must hold after the edit, worked out from the spec."""
    out: dict[Any, str] = {}
    for slot in target.slots:
        if slot.role == "ref":
            m = REFERENCE.match(slot.value)
            assert m, slot.value
            value = m["name"] + (f":{tag or m['tag']}" if tag or m["tag"] else "")
            out[slot.path] = value + (f"@{digest}" if digest else "")
        elif slot.role == "tag":
            keeps_digest = target.slot("digest") is None and target.insert("digest") is None
            out[slot.path] = (tag or "") + (f"@{digest}" if digest and keeps_digest else "")
        elif slot.role == "digest":
            value = digest or ""
            out[slot.path] = value.removeprefix("sha256:") if slot.hex_digest else value
    for insert in target.inserts:
        if insert.role == "tag" and tag:
            out[(*insert.mapping_path, insert.key)] = tag
        if insert.role == "digest" and digest and target.slot("digest") is None:
            out[(*insert.mapping_path, insert.key)] = digest
    return out


def _without_added_lines(old: str, new: str, target: Target) -> str:
    """``new`` minus the whole ``tag:``/``newTag:``/``digest:`` lines the edit added after the
    line of the field it extends (each must be a complete new line, at that place)."""
    for insert in sorted(target.inserts, key=lambda i: -i.at):
        line = old.count("\n", 0, insert.at) + 1
        lines = new.splitlines(keepends=True)
        if line < len(lines) and lines[line].lstrip().startswith(f"{insert.key}: "):
            assert lines[line].startswith(insert.prefix.lstrip("\r\n"))
            new = "".join(lines[:line] + lines[line + 1 :])
    return new


def _changed_span(old: str, new: str) -> tuple[int, int]:
    """[start, end) in ``old`` outside which ``old`` and ``new`` are identical."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, len(old) - suffix


@pytest.mark.parametrize("path", FILES, ids=_ids())
def test_each_reference_changes_only_its_version(path: Path) -> None:
    """Setting one reference's version changes bytes only inside that reference's fields, and
    re-parsing shows exactly those fields changed, to strings with the new version."""
    name = str(path.relative_to(CORPUS))
    text = path.read_bytes().decode("utf-8")
    targets = locate(text, source=name)
    if not targets:
        assert apply(text, [], source=name) == text, f"{name}: changed without any edit"
        return
    old_docs = _load(text)
    for target in targets:
        if target.problem:
            with pytest.raises(EditError, match=re.escape(f"{name}:{target.line}")):
                apply(text, [Edit(target, NEW_TAG, None)], source=name)
            continue
        tag, digest = _version(target)
        new = apply(text, [Edit(target, tag, digest)], source=name)
        edited = _without_added_lines(text, new, target)
        start, end = _changed_span(text, edited)
        spans = [(s.start, s.end) for s in target.slots]
        if target.removal:
            spans.append((target.removal.start, target.removal.end))
        if start < end or len(text) != len(edited):
            low, high = min(s for s, _ in spans), max(e for _, e in spans)
            assert low <= start and end <= high, (
                f"{name}:{target.line}: bytes changed outside {target.field} "
                f"({text[start:end]!r} -> {edited[start : len(edited) - (len(text) - end)]!r})"
            )
        new_docs = _load(new)
        assert len(new_docs) == len(old_docs), f"{name}: document count changed"
        want = _expected_values(target, tag, digest)
        changed = _differences(old_docs, new_docs)
        removed = {(*target.removal.mapping_path, target.removal.key)} if target.removal else set()
        for doc_index, *field in changed:
            field_path = tuple(field)
            assert field_path in set(want) | removed, f"{name}:{target.line}: {field_path} changed"
            if field_path in want:
                got = _at(new_docs[doc_index], field_path)
                assert isinstance(got, str), f"{name}:{target.line}: {field_path} is {got!r}"
                assert got == want[field_path], f"{name}:{target.line}: {field_path}={got!r}"
        missing = set(want) - {tuple(field) for _, *field in changed}
        for field_path in missing:  # unchanged only where it already held the new value
            assert any(_holds(doc, field_path, want[field_path]) for doc in old_docs), (
                f"{name}:{target.line}: {field_path} did not change"
            )


def _holds(doc: Any, path: tuple[Any, ...], value: str) -> bool:
    try:
        return bool(_at(doc, path) == value)
    except (KeyError, IndexError, TypeError):
        return False


@pytest.mark.parametrize("path", FILES, ids=_ids())
def test_all_references_of_a_file_at_once(path: Path) -> None:
    """All editable references of a file set in one apply leave every other byte in place."""
    name = str(path.relative_to(CORPUS))
    text = path.read_bytes().decode("utf-8")
    targets = [t for t in locate(text, source=name) if not t.problem]
    edits = [Edit(t, *_version(t)) for t in targets]
    new = apply(text, edits, source=name)
    spans = sorted(
        [(s.start, s.end) for t in targets for s in t.slots]
        + [(i.at, i.at) for t in targets for i in t.inserts]
        + [(t.removal.start, t.removal.end) for t in targets if t.removal]
    )
    # Remove every edited span from both texts: what is left must be identical.
    kept = [
        text[e:s] for (_, e), (s, _) in zip([(0, 0), *spans], [*spans, (len(text), 0)], strict=True)
    ]
    rest = new
    for piece in kept:
        at = rest.find(piece)
        assert at >= 0, f"{name}: unedited text {piece[:60]!r} was changed"
        rest = rest[at + len(piece) :]


def test_counts_per_kind_match_docs() -> None:
    """docs/rewrite.md reports how many references of each kind the corpus holds."""
    counts: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    for path in FILES:
        kinds = [t.kind for t in locate(path.read_bytes().decode("utf-8"))]
        counts.update(kinds)
        files.update(set(kinds))
    table = dict(re.findall(r"^\| `([\w-]+)` \| (\d+) \|", DOCS.read_text(), re.MULTILINE))
    assert {k: int(v) for k, v in table.items()} == dict(counts)

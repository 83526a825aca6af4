"""Configuration files load through libyaml when they can: the result is ruamel.yaml's, to
the type of every scalar and the line and column of every key and item, on every policy and
registries file in this repository, every YAML block of the docs and the YAML corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from imagebot.core import yamldoc
from imagebot.errors import PolicyError
from tests.support.corpus import corpus_files, require_corpus

ROOT = Path(__file__).resolve().parents[1]


def shape(node: Any, seen: dict[int, int] | None = None) -> Any:
    """Values, scalar types and positions of a loaded document, comparable with ==."""
    seen = {} if seen is None else seen
    if isinstance(node, (CommentedMap, CommentedSeq)):
        if id(node) in seen:  # an alias: the same object as its anchor
            return ("alias", seen[id(node)])
        seen[id(node)] = len(seen)
        where = (node.lc.line, node.lc.col)
        if isinstance(node, CommentedMap):
            return (
                "map",
                where,
                [(k, tuple(node.lc.key(k)), shape(v, seen)) for k, v in node.items()],
            )
        return (
            "seq",
            where,
            [(tuple(node.lc.item(i)), shape(v, seen)) for i, v in enumerate(node)],
        )
    # ruamel's scalar subclasses (ScalarFloat, an anchored PlainScalarString) carry
    # formatting for writing back; a loaded configuration only reads their values.
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return (kind.__name__, kind(node))
    return (type(node).__name__, node)


def both(text: str) -> tuple[Any, Any]:
    fast = yamldoc._load_fast(text)
    slow = yamldoc._load_ruamel(text, source="x")
    return fast, slow


def texts() -> list[tuple[str, str]]:
    out = []
    for path in sorted([*ROOT.glob("policies/**/*.yaml"), *ROOT.glob("tests/fixtures/**/*.yaml")]):
        out.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    for doc in sorted([ROOT / "README.md", *ROOT.glob("docs/*.md")]):
        for n, block in enumerate(doc.read_text(encoding="utf-8").split("```yaml\n")[1:]):
            out.append((f"{doc.name} block {n}", block.split("```", 1)[0]))
    return out


@pytest.mark.parametrize(("name", "text"), texts(), ids=[n for n, _ in texts()])
def test_repository_yaml_loads_as_ruamel_loads_it(name: str, text: str) -> None:
    try:
        slow = yamldoc._load_ruamel(text, source=name)
    except PolicyError:
        assert yamldoc._load_fast(text) is None  # what ruamel refuses goes to ruamel
        return
    fast = yamldoc._load_fast(text)
    if fast is not None:
        assert [shape(d) for d in fast] == [shape(d) for d in slow]


def test_corpus_loads_as_ruamel_loads_it() -> None:
    require_corpus()
    fast_count = 0
    for path in corpus_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            slow = yamldoc._load_ruamel(text, source=str(path))
        except PolicyError:
            continue
        fast = yamldoc._load_fast(text)
        if fast is not None:
            fast_count += 1
            assert [shape(d) for d in fast] == [shape(d) for d in slow], path
    # Real files are mostly plain: the fast path is the common one, not a rare one.
    assert fast_count > len(corpus_files()) // 2


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\nb: on\nc: 0x1F\nd: 1_000\ne: 010\nf: 1.5\ng: .inf\nh: 2024-01-31\ni: ~\nj:\n",
        "k: TRUE\nl: False\nm: -7\nn: +3\no: 1e3\np: '1'\nq: !!str 5\nr: \"x\"\n",
        "base: &b {x: 1, y: [a, b]}\nother: *b\nmerged:\n  <<: *b\n  x: 2\n",
        "a: 1\na: 2\n",
        "%YAML 1.1\n---\na: yes\n",
        "a: !custom x\n",
        "s: |\n  literal\n  text\nt: >\n  folded\n  text\n",
        "? [complex]\n: key\n",
        "a: [1, 2\n",
        "--- a\n--- b\n",
        "",
        "# only a comment\n",
    ],
)
def test_every_spelling_loads_as_ruamel_loads_it(text: str) -> None:
    try:
        slow = yamldoc._load_ruamel(text, source="x")
    except PolicyError as exc:
        assert yamldoc._load_fast(text) is None
        with pytest.raises(PolicyError) as raised:
            yamldoc.load_mapping(text, source="x", what="policy file")
        assert str(raised.value) == str(exc)
        return
    fast = yamldoc._load_fast(text)
    if fast is not None:
        assert [shape(d) for d in fast] == [shape(d) for d in slow]


def test_plain_files_take_the_fast_path() -> None:
    # Not a check of speed: that a typical policy file is not silently left to ruamel.
    text = (ROOT / "policies").glob("*.yaml").__next__().read_text(encoding="utf-8")
    assert yamldoc._load_fast(text) is not None

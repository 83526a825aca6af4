"""docs/policies.md documents every selection field and strategy, each with an example."""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from imagebot.core.policy import ImagePolicy
from imagebot.core.selection import STRATEGIES, SelectionRule, validate_rule
from tests.support.cli import run_cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "policies.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Image policies: choosing a version")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_rule_field_has_a_heading_and_a_yaml_example() -> None:
    """Each SelectionRule field has a ### heading and a YAML example under it setting it."""
    section = _section()
    parts = re.split(r"\n### ", section)
    for f in dataclasses.fields(SelectionRule):
        matching = [p for p in parts[1:] if f"`{f.name}`" in p.splitlines()[0]]
        assert matching, f"no heading for {f.name}"
        body = matching[0]
        examples = re.findall(r"```yaml\n(.*?)```", body, flags=re.S)
        written = rf"^\s*{f.name}:|[{{,]\s*{f.name}:"  # a key, block or flow style
        assert any(re.search(written, ex, flags=re.M) for ex in examples), f.name


def test_every_yaml_example_is_a_valid_image_policy() -> None:
    """Each YAML example, placed in an image entry, loads and yields a valid selection rule."""
    section = _section()
    examples = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    assert len(examples) >= 15
    yaml = YAML(typ="safe")
    for text in examples:
        data = yaml.load(text)
        if "images" in data:
            entries = data["images"]
        else:
            entries = [{"name": "example", "repository": "ghcr.io/acme/example", **data}]
        for entry in entries:
            validate_rule(ImagePolicy.model_validate(entry).rule())


def test_every_strategy_is_described_with_an_example() -> None:
    """Each strategy has a paragraph and a YAML example selecting it."""
    section = _section()
    for name in STRATEGIES:
        assert f"**{name}**" in section, name
        assert re.search(rf"^strategy: {re.escape(name)}$", section, flags=re.M), name


def test_every_mutable_build_tag_is_documented() -> None:
    """docs/policies.md lists every tag selection treats as a mutable build tag, and no other."""
    from imagebot.core.selection.build_tags import MUTABLE_TAGS

    section = _section()
    start = section.index("- mutable tags, in any letter case:")
    listed = section[start : section.index("\n- commit hashes", start)]
    assert set(re.findall(r"`([a-z]+)`", listed)) == MUTABLE_TAGS


def test_documented_gate_order_is_the_code_order() -> None:
    """The numbered gate list in docs/policies.md names the gates in GATES' order."""
    from imagebot.core.selection import GATES

    section = _section()
    listed = section[section.index("The gates, in order") : section.index("A tag that a strategy")]
    words = {
        "build-tag": "build tags",
        "read": "the strategy must be able to read",
        "downgrade": "no downgrade",
    }
    at = [listed.index(words.get(g.name, f"`{g.name}`")) for g in GATES]
    assert at == sorted(at), [g.name for g in GATES]


def _select_sessions() -> list[tuple[str, str, str]]:
    """(where, command, output shown) for each ``$ printf … | imagebot select`` in the docs."""
    out = []
    for doc in sorted([DOC.parents[1] / "README.md", *DOC.parent.glob("*.md")]):
        text = doc.read_text(encoding="utf-8")
        session = r"^```console\n\$ (printf [^\n]*\| imagebot select [^\n]*)\n(.*?)^```"
        for m in re.finditer(session, text, flags=re.S | re.M):
            where = f"{doc.name}:{text.count(chr(10), 0, m.start()) + 1}"
            out.append((where, m.group(1), m.group(2)))
    return out


def test_select_sessions_in_the_docs_print_what_they_show() -> None:
    """Every `printf … | imagebot select` session in the docs prints exactly the lines shown
    (the explanation on stderr, then the chosen tag on stdout)."""
    sessions = _select_sessions()
    assert len(sessions) >= 3
    for where, command, shown in sessions:
        printf, select = command.split(" | imagebot select ")
        tags = subprocess.run(["bash", "-c", printf], capture_output=True, text=True, check=True)
        result = run_cli("select", *shlex.split(select), input=tags.stdout)
        assert result.stderr + result.stdout == shown, where

"""docs/promotion.md: every promotion field has a heading and an example, and every YAML
example loads as (part of) a valid policy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from imagebot.config import load_policies
from imagebot.core.policy import EnvironmentPolicy, Promotion
from imagebot.core.policy_file import parse_policy

DOC = Path(__file__).resolve().parents[1] / "docs" / "promotion.md"
FILLER: dict[str, Any] = {
    "environment": "example",
    "repo": {"url": "https://git.example.com/acme/env.git"},
    "images": [{"name": "backend", "repository": "ghcr.io/acme/backend"}],
}


def examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_every_yaml_example_is_a_valid_policy_or_part_of_one() -> None:
    """Whole policy files parse as written; fragments parse inside a minimal policy."""
    found = examples()
    assert len(found) >= 10
    for text in found:
        data = YAML(typ="safe").load(text)
        if "environment" in data:
            parse_policy(text, source="docs/promotion.md")
        else:
            EnvironmentPolicy.model_validate({**FILLER, **data})


def test_every_field_has_a_heading_with_an_example_setting_it() -> None:
    """Each promote field and the group/unhold image fields have a ### heading and an example."""
    sections = re.split(r"\n### ", DOC.read_text(encoding="utf-8"))
    names = [f.alias or n for n, f in Promotion.model_fields.items()] + ["group", "unhold"]
    for name in names:
        matching = [s for s in sections[1:] if s.splitlines()[0] == f"`{name}`"]
        assert matching, f"no heading for {name}"
        body = re.findall(r"```yaml\n(.*?)```", matching[0], flags=re.S)
        assert any(re.search(rf"^\s*(- )?{name}:|[{{,]\s*{name}:", b, flags=re.M) for b in body), (
            name
        )


def test_the_pipeline_example_loads_as_a_graph(tmp_path: Path) -> None:
    """The three files of the complete pipeline load together, upstream first, no problems."""
    for text in examples()[:3]:
        name = re.match(r"# policies/(\w+)\.yaml", text)
        assert name is not None
        (tmp_path / f"{name.group(1)}.yaml").write_text(text)
    loaded = load_policies(tmp_path)
    assert loaded.problems == ()
    assert [p.name for p in loaded.environments] == ["dev", "staging", "production"]

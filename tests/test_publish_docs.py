"""docs/publishing.md and the README's pull-request example are valid, loadable policies."""

from __future__ import annotations

import re
from pathlib import Path

from imagebot.core.policy_file import parse_policy

ROOT = Path(__file__).resolve().parents[1]


def _examples(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_every_yaml_example_in_publishing_doc_is_a_valid_policy() -> None:
    """Each YAML block of docs/publishing.md parses and validates as a whole policy file."""
    examples = _examples(ROOT / "docs" / "publishing.md")
    assert len(examples) >= 4
    modes = set()
    for text in examples:
        loaded = parse_policy(text, source="docs/publishing.md")
        modes.add(loaded.policy.publish.mode)
    assert modes == {"commit", "pull-request"}


def test_every_field_example_sets_every_publish_field() -> None:
    """The "Every field" example sets each publish and forge field the policy model has."""
    text = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    section = text[text.index("### Every field") :]
    example = _examples_from(section)[0]
    policy = parse_policy(example, source="docs/publishing.md").policy
    publish = policy.publish
    assert publish.forge is not None and policy.signing is not None
    assert set(type(publish).model_fields) <= publish.model_fields_set
    forge_fields = set(type(publish.forge).model_fields) - {"token_env"}
    assert forge_fields <= publish.forge.model_fields_set


def test_readme_pull_request_example_is_a_valid_policy() -> None:
    """The README's pull-request policy validates and selects pull-request mode."""
    (example,) = [t for t in _examples(ROOT / "README.md") if "pull-request" in t]
    publish = parse_policy(example, source="README.md").policy.publish
    assert publish.mode == "pull-request" and publish.forge is not None


def _examples_from(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)

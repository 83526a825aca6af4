"""Every YAML example in README.md and docs/ loads, and a configuration example validates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from imagebot.core.policy_file import parse_policy
from imagebot.registry.settings import parse_registries

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

#: Top-level keys that only a policy file or registries.yaml has: an example using one of
#: them claims to be such a file and must load as one.
POLICY_KEYS = {"environment", "repo", "images", "publish", "schedule", "promote"}
REGISTRIES_KEYS = {"registries", "defaults", "credentials"}


def examples() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M):
            line = text.count("\n", 0, m.start()) + 1
            out.append((f"{doc.relative_to(ROOT)}:{line}", m.group(1)))
    return out


EXAMPLES = examples()


def test_the_docs_have_examples_to_check() -> None:
    """The collection finds the examples of the docs that have them (not an empty pass)."""
    sources = {where.split(":")[0] for where, _ in EXAMPLES}
    assert {"docs/credentials.md", "docs/registries.md", "docs/security.md"} <= sources
    assert "README.md" in sources


@pytest.mark.parametrize(("where", "text"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_yaml_example_loads(where: str, text: str) -> None:
    """The example is YAML; one that looks like a policy file or registries.yaml is a valid one."""
    documents = list(YAML(typ="safe").load_all(text))
    if len(documents) > 1:
        # A multi-document example is a manifest stream (Kubernetes, Flux): each loaded.
        return
    data = documents[0] if documents else None  # a comment-only example has no document
    if not isinstance(data, dict):
        return
    keys = set(data)
    if keys & POLICY_KEYS and "environment" in keys:
        parse_policy(text, source=where)
    elif keys & REGISTRIES_KEYS:
        assert not keys - {"registries", "defaults"}, f"{where}: not a registries.yaml key"
        parse_registries(text, source=where)


def test_user_facing_docs_name_no_internal_issue_numbers() -> None:
    """README and docs speak to users: no "issue 12" or "#12" references to our tracker."""
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        found = re.findall(r"\b[Ii]ssues? \d+\b|(?<![\w&])#\d+\b", text)
        assert not found, f"{doc.relative_to(ROOT)}: {found}"

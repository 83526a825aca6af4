"""docs/migrating.md: every worked conversion is `imagebot migrate`'s real output, every YAML
example loads, and each peer's section has its three parts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from imagebot.core.policy_file import parse_policy
from imagebot.migrate import CONVERTERS
from imagebot.migrate.model import checked

DOC = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
FENCE = re.compile(r"<!-- migrate-(input|output) (\S+) -->\n```\w+\n(.*?)```", re.S)
#: The worked Renovate conversion runs in a checkout with this origin (the doc says so).
ORIGIN = "https://git.example.com/acme/env.git"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"\n## ", text)
    return {p.splitlines()[0]: p for p in parts[1:]}


def _conversions() -> list[tuple[str, dict[str, str], str]]:
    out = []
    for section in _sections().values():
        inputs: dict[str, str] = {}
        for kind, name, body in FENCE.findall(section):
            if kind == "input":
                inputs[name] = body
            else:
                out.append((name, inputs, body))
                inputs = {}
    return out


def test_each_peer_section_has_concepts_a_conversion_and_differences() -> None:
    """Flux, Argo CD Image Updater and Renovate each have the three parts; kustomize lists
    its differences."""
    sections = _sections()
    for peer in ("Flux image automation", "Argo CD Image Updater", "Renovate"):
        body = sections[peer]
        for part in ("### Concepts side by side", "### A worked conversion", "### Deliberate"):
            assert part in body, (peer, part)
    assert "Deliberate differences" in sections["kustomize `edit set image`"]
    assert [tool for tool, _, _ in _conversions()] == ["flux", "argocd-image-updater", "renovate"]


@pytest.mark.parametrize(("tool", "files", "shown"), _conversions(), ids=lambda v: str(v)[:20])
def test_worked_conversion_is_the_real_output(tool: str, files: dict[str, str], shown: str) -> None:
    """Converting the inputs shown gives exactly the policy file shown, without warnings."""
    migration = CONVERTERS[tool](files, ORIGIN if tool == "renovate" else None)
    assert migration.warnings == []
    (env,) = migration.environments
    assert checked(env, tool, f"{env.name}.yaml") == shown


def test_every_yaml_example_loads_and_policy_examples_validate() -> None:
    """Each YAML block parses; each that is a policy file passes `imagebot check`'s rules."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 6
    policies = 0
    for block in blocks:
        docs = list(yaml.safe_load_all(block))
        if len(docs) == 1 and isinstance(docs[0], dict) and "environment" in docs[0]:
            parse_policy(block, source="docs/migrating.md")
            policies += 1
    assert policies == 3


def test_policies_doc_detect_example_validates() -> None:
    """docs/policies.md's environment example with detect and marker_namespace is valid."""
    text = (DOC.parent / "policies.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "detect:" in b]
    policy = parse_policy(block, source="docs/policies.md").policy
    assert (policy.detect, policy.marker_namespace) == ("markers", "flux-system")

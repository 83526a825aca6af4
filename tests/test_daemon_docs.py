"""docs/daemon.md: its YAML examples load, and it documents every sender, metric and option."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

from imagebot.cli import serve
from imagebot.core.policy_file import parse_policy
from imagebot.daemon.metrics import Metrics
from imagebot.daemon.webhooks import SENDERS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "daemon.md").read_text()


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.S)


def test_every_yaml_example_loads() -> None:
    """Policy examples are valid policy files; the registry notification example is the
    README's (which the end-to-end test feeds to a real registry)."""
    blocks = yaml_blocks(DOC)
    assert len(blocks) >= 3
    readme = [b for b in yaml_blocks((ROOT / "README.md").read_text()) if "notifications:" in b]
    for i, block in enumerate(blocks):
        doc = yaml.safe_load(block)
        if "environment" in doc:
            parse_policy(block, source=f"docs/daemon.md example {i}")
        else:
            assert block == readme[0], "the notification example differs from the README's"
            endpoint = doc["notifications"]["endpoints"][0]
            assert endpoint["url"].endswith("/webhooks/distribution")


def test_every_sender_is_documented() -> None:
    """Each webhook path imagebot serves has a row in the senders table."""
    for name in SENDERS:
        assert f"`/webhooks/{name}" in DOC, name


def test_every_metric_is_documented() -> None:
    """Each metric /metrics exposes is in the metrics table."""
    names = {m.name for m in Metrics().registry.collect()}
    assert names
    for name in names:
        exposed = f"{name}_total" if f"`{name}_total`" in DOC else name
        assert f"`{exposed}`" in DOC or f"`{name}`" in DOC, name


def test_every_serve_option_is_documented() -> None:
    """Each `imagebot serve` option appears in the options table."""
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    for action in parser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in DOC, flag

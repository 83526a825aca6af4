"""Where the shared real-world YAML corpus lives.

``$IMAGEBOT_CORPUS`` if set, else ``../shared/corpus/yaml`` beside this checkout (as CI lays
it out). Where it is absent, corpus tests skip with a one-line reason — except under CI
(``CI=true``), where a missing corpus is a failure, so CI can never pass on nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """$IMAGEBOT_CORPUS, else ``../shared/corpus/yaml`` beside this checkout."""
    if os.environ.get("IMAGEBOT_CORPUS"):
        return Path(os.environ["IMAGEBOT_CORPUS"])
    return ROOT.parent / "shared" / "corpus" / "yaml"


def corpus_files() -> list[Path]:
    """Every YAML file of the corpus; empty when the corpus is absent."""
    root = corpus_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def require_corpus() -> None:
    """Skip the calling test when the corpus is absent; fail instead under CI."""
    root = corpus_dir()
    if root.is_dir():
        return
    reason = f"corpus not found at {root} (set IMAGEBOT_CORPUS)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)

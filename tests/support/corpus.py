"""Where the shared real-world YAML corpus lives: ``shared/`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def corpus_dir() -> Path:
    """$IMAGEBOT_CORPUS, else ``../shared/corpus/yaml`` beside this checkout (as in CI)."""
    if "IMAGEBOT_CORPUS" in os.environ:
        return Path(os.environ["IMAGEBOT_CORPUS"])
    for candidate in (ROOT.parent / "shared", Path("/work/shared")):
        if (candidate / "corpus" / "yaml").is_dir():
            return candidate / "corpus" / "yaml"
    return ROOT.parent / "shared" / "corpus" / "yaml"


def corpus_files() -> list[Path]:
    return sorted(p for p in corpus_dir().rglob("*") if p.suffix in (".yaml", ".yml"))

"""Options shared by several commands, kept free of heavy imports so that a light command
(``imagebot tags``) starts as fast as the registry client allows."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("IMAGEBOT_CACHE_DIR") or Path(base) / "imagebot")


def add_registry_arguments(
    parser: argparse.ArgumentParser, *, insecure: bool = True, beside_policies: bool = True
) -> None:
    """``--registries FILE`` and, with ``insecure``, ``--insecure-registry HOST``."""
    where = " (default: registries.yaml in the policies directory, if any)"
    parser.add_argument(
        "--registries",
        type=Path,
        default=None,
        metavar="FILE",
        help="registry settings" + (where if beside_policies else ""),
    )
    if insecure:
        parser.add_argument(
            "--insecure-registry",
            action="append",
            default=[],
            metavar="HOST",
            help="talk plain HTTP to this registry host (repeatable); loopback hosts always may",
        )

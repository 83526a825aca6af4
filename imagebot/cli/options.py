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


def add_cache_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where clones and the registry cache live (default: $IMAGEBOT_CACHE_DIR or"
        " ~/.cache/imagebot)",
    )


def add_git_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--git-timeout",
        type=float,
        default=os.environ.get("IMAGEBOT_GIT_TIMEOUT", "300"),  # argparse applies type=
        metavar="SECONDS",
        help="longest a git fetch or push may take, and a wait for a clone another imagebot"
        " process holds (default: $IMAGEBOT_GIT_TIMEOUT or 300)",
    )

"""Options shared by several commands, kept free of heavy imports so that a light command
(``imagebot tags``) starts as fast as the registry client allows."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
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


def add_policies_argument(parser: argparse.ArgumentParser, help: str) -> None:
    from imagebot.policysource import source

    parser.add_argument(
        "--policies",
        type=source,
        default=os.environ.get("IMAGEBOT_POLICIES", "policies"),  # argparse applies type=
        metavar="DIR|git+URL#BRANCH:PATH",
        help=help + "; or git+URL#BRANCH:PATH, the directory PATH of BRANCH in a git"
        " repository (default: $IMAGEBOT_POLICIES or ./policies)",
    )


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    add_policies_argument(parser, "directory of policy files, one per environment")
    parser.add_argument(
        "--environment",
        "-e",
        action="append",
        default=[],
        metavar="NAME",
        help="only this environment (repeatable; default: all)",
    )


def add_cycle_arguments(parser: argparse.ArgumentParser, *, explain: bool = True) -> None:
    add_policy_arguments(parser)
    add_cache_dir_argument(parser)
    add_registry_arguments(parser)
    add_git_timeout_argument(parser)
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text")
    parser.add_argument(
        "--now",
        type=_timestamp,
        default=None,
        metavar="TIME",
        help="judge promotion gates (soak, windows, freezes) and min_age as of this ISO 8601"
        " time instead of the system clock, e.g. 2026-12-04T18:00+01:00; commits made by"
        " apply are dated at it too (for rehearsals and demos)",
    )
    if not explain:
        return
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print which policy entry governs each reference, and every tag of every image"
        " with the rule that accepted or rejected it",
    )


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-04T18:00+01:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

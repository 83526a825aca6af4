"""``imagebot migrate``: policy files from Flux, Argo CD Image Updater or Renovate config.

Reads every YAML (and Renovate JSON) file below DIR, converts, checks each policy as
``imagebot check`` would, and writes ``<environment>.yaml`` files into ``--out-dir`` (or
prints them with ``--dry-run``). Warnings name each thing that was not converted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from imagebot.errors import PolicyError
from imagebot.migrate import CONVERTERS
from imagebot.migrate.model import checked

NAME = "migrate"

_SUFFIXES = (".yaml", ".yml", ".json", ".json5")
_NAMES = ("Kustomization", ".renovaterc")
#: Files never worth reading: version control and dependencies.
_SKIPPED_DIRS = frozenset((".git", "node_modules", ".venv"))
#: Larger files are data, not configuration.
_MAX_BYTES = 2_000_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="tool", required=True, choices=sorted(CONVERTERS))
    parser.add_argument("directory", metavar="DIR", type=Path, help="where the manifests are")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("policies"),
        metavar="DIR",
        help="where to write the policy files (default: ./policies)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the policy files, write nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite policy files that already exist"
    )


def _read(directory: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if _SKIPPED_DIRS.intersection(relative.parts[:-1]) or not path.is_file():
            continue
        if not (path.name.endswith(_SUFFIXES) or path.name in _NAMES):
            continue
        if path.stat().st_size > _MAX_BYTES:
            continue
        try:
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"imagebot migrate: {path}: cannot read ({exc}); skipped", file=sys.stderr)
    return files


def _origin_url(directory: Path) -> str | None:
    """The ``origin`` remote of a git checkout, so a converted policy points at it."""
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def run(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        print(f"imagebot migrate: {directory}: not a directory", file=sys.stderr)
        return 2
    migration = CONVERTERS[args.tool](_read(directory), _origin_url(directory))
    for warning in migration.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not migration.environments:
        print(f"imagebot migrate: nothing to convert in {directory}", file=sys.stderr)
        return 1
    out: dict[Path, str] = {}
    problems: list[str] = []
    for env in migration.environments:
        path = args.out_dir / f"{env.name}.yaml"
        try:
            out[path] = checked(env, migration.tool, str(path))
        except PolicyError as exc:
            problems.extend(exc.problems)
    # One environment that cannot be converted or written never stops the others.
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if args.dry_run:
        for path, text in out.items():
            print(f"# --- {path}\n{text}", end="")
        return 1 if problems else 0
    failed = bool(problems)
    for path, text in out.items():
        if path.exists() and not args.force:
            print(f"error: {path}: already exists; not overwritten (--force overwrites)",
                  file=sys.stderr)  # fmt: skip
            failed = True
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}: environment {path.stem}")
    return 1 if failed else 0

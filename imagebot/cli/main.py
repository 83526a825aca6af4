"""Argument parsing and dispatch only; each subcommand lives in its own module.

A command module exposes ``NAME``, ``add_arguments(parser)`` and ``run(args) -> int``; its
one-line help lives in :data:`COMMANDS`, so ``--help`` and ``--version`` import no command
module (nor pydantic, structlog or httpx) and answer in a few milliseconds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import imagebot

if TYPE_CHECKING:
    from imagebot.logs import LogFormat

#: Subcommand modules under imagebot.cli and their help, in the order ``--help`` lists them.
COMMANDS: dict[str, str] = {
    "check": "validate the policy files and registries.yaml, reporting every problem with"
    " file:line",
    "plan": "show what one cycle would change (unified diff + summary), publish nothing",
    "apply": "run one cycle: scan, plan, edit, commit and push",
    "serve": "run as a daemon: cycles on schedules and webhooks, the status page, /metrics",
    "status": "show what each environment runs, since when, its next version and what it waits for",
    "promote": "promote an image now to a version its upstream ran, past soak and windows"
    " (a commit)",
    "hold": "keep an image at the version it runs until released (a commit)",
    "release": "lift the holds on an image (a commit)",
    "rollback": "move an image back to the version that ran before, holding the one it leaves"
    " (a commit)",
    "select": "choose a tag from tags on stdin (one per line) the way an image policy would",
    "set_image": "set the tag (and digest) of an image in Kubernetes, Helm, kustomize and"
    " compose files",
    "schema": "print the JSON Schema of policy files (for editor completion and checking)",
    "tags": "list the tags of image repositories as imagebot sees them",
    "migrate": "convert Flux, Argo CD Image Updater or Renovate configuration into policy files",
}

#: Log events whose content a one-shot command prints itself as an ``error:`` line.
REPORTED_EVENTS = frozenset(
    {"scan_failed", "digest_failed", "repo_unavailable", "history_unavailable",
     "publish_failed", "problem"}
)  # fmt: skip

EXIT_ERROR = 1
EXIT_USAGE = 2


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"imagebot.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the module of ``only`` (a module name in COMMANDS) is imported and
    given its arguments, so no command pays for importing the others."""
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Keep GitOps environment repos on the right container image versions.",
    )
    parser.add_argument("--version", action="version", version=f"imagebot {imagebot.__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("IMAGEBOT_LOG_LEVEL"),
        choices=["debug", "info", "warning", "error"],
        help="default: $IMAGEBOT_LOG_LEVEL, else info for serve and warning for the others",
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("IMAGEBOT_LOG_FORMAT"),
        choices=["auto", "console", "json"],
        help="auto: human lines on a terminal, JSON otherwise (default: $IMAGEBOT_LOG_FORMAT,"
        " else json for serve and auto for the others)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if only and name != only:
            continue
        p = sub.add_parser(name.replace("_", "-"), help=help_text, description=help_text)
        if name == only:
            module = _load(name)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command module named on the command line, if any (the first word naming one)."""
    by_name = {name.replace("_", "-"): name for name in COMMANDS}
    return next((by_name[a] for a in argv if a in by_name), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_chosen(words))
    args = parser.parse_args(words)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    # Imported here, not at the top: --help and --version never need them.
    from imagebot import logs
    from imagebot.errors import ImagebotError, PolicyError
    from imagebot.redact import redact

    level, fmt, reported = log_settings(args.command, args.log_level, args.log_format)
    logs.configure(level=level, fmt=fmt, reported=reported)
    try:
        code: int = args._run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``imagebot schema | head``): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"error: {redact(problem)}", file=sys.stderr)
        return EXIT_ERROR
    except ImagebotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception:
        full = _full_disk(args)
        if full is None:
            raise
        print(
            f"error: no space left on the device of {full}; free some and run again",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return code


def log_settings(
    command: str, level: str | None, fmt: LogFormat | None
) -> tuple[str, LogFormat, frozenset[str]]:
    """(level, format, events left out) for a command, given --log-level/--log-format or
    their variables (None: not given). serve logs JSON at info; a one-shot command logs
    warnings, readable on a terminal, and leaves out below info the events it reports
    itself as error: lines, so each problem is said once."""
    daemon = command == "serve"
    level = level or ("info" if daemon else "warning")
    quiet = not daemon and level in ("warning", "error")
    return level, fmt or ("json" if daemon else "auto"), REPORTED_EVENTS if quiet else frozenset()


def _full_disk(args: argparse.Namespace) -> str | None:
    """The cache directory, when its disk is full: whatever raised (sqlite, GitPython, a
    write), that is what the user must fix. The next run recovers (the cache is rebuilt,
    git writes nothing half)."""
    from imagebot.cli.options import default_cache_dir

    directory = getattr(args, "cache_dir", None) or default_cache_dir()
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    return str(directory) if shutil.disk_usage(directory).free < 1024 * 1024 else None

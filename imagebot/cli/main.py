"""Argument parsing and dispatch only; each subcommand lives in its own module.

A command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

import imagebot
from imagebot import logs
from imagebot.errors import ImagebotError, PolicyError

#: Subcommand modules under imagebot.cli, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "check",
    "plan",
    "apply",
    "status",
    "select",
    "set_image",
    "schema",
    "tags",
    "migrate",
)

EXIT_ERROR = 1
EXIT_USAGE = 2


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"imagebot.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only`` (a module name in COMMANDS) just that subcommand is
    imported, so a light command does not pay for importing every other one."""
    parser = argparse.ArgumentParser(
        prog="imagebot",
        description="Keep GitOps environment repos on the right container image versions.",
    )
    parser.add_argument("--version", action="version", version=f"imagebot {imagebot.__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("IMAGEBOT_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="default: $IMAGEBOT_LOG_LEVEL or info",
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("IMAGEBOT_LOG_FORMAT", "auto"),
        choices=["auto", "console", "json"],
        help="auto: console on a terminal, JSON otherwise (default: $IMAGEBOT_LOG_FORMAT or auto)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMANDS:
        module = _load(name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
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
    logs.configure(level=args.log_level, fmt=args.log_format)
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
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except ImagebotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code

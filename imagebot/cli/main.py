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
COMMANDS: tuple[str, ...] = ("check", "plan", "apply", "select", "set_image", "schema", "tags")

EXIT_ERROR = 1
EXIT_USAGE = 2


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"imagebot.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMANDS:
        module = _load(name)
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logs.configure(level=args.log_level, fmt=args.log_format)
    try:
        code: int = args._run(args)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except ImagebotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code

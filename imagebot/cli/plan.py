"""``imagebot plan``: what one cycle would change — a diff and one line per change."""

from __future__ import annotations

import argparse

from imagebot.cli import cycle, options

NAME = "plan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_cycle_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return cycle.run_cycle_command(args, publish=False)

"""``imagebot plan``: what one cycle would change — a diff and one line per change."""

from __future__ import annotations

import argparse

from imagebot.cli import common

NAME = "plan"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_cycle_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return common.run_cycle_command(args, publish=False)

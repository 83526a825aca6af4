"""``imagebot apply``: run one cycle and publish every environment's changes."""

from __future__ import annotations

import argparse

from imagebot.cli import cycle, options

NAME = "apply"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_cycle_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return cycle.run_cycle_command(args, publish=True)

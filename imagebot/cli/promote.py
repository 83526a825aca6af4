"""``imagebot promote``: a manual operation as a git commit (see ``imagebot.cli.manual``)."""

from __future__ import annotations

import argparse

from imagebot.cli import manual

NAME = "promote"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    manual.add_arguments(parser, version=True)


def run(args: argparse.Namespace) -> int:
    return manual.run(NAME, args)

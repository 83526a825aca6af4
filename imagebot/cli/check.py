"""``imagebot check``: validate every policy file; exit non-zero on any problem."""

from __future__ import annotations

import argparse
import sys

from imagebot.cli import common

NAME = "check"
HELP = "validate the policy files and report every problem with file:line"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_policy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    policies = common.load(args)
    for problem in policies.problems:
        print(f"error: {problem}")
    for loaded in policies.environments:
        images = len(loaded.policy.images)
        print(f"ok: {loaded.source}: environment {loaded.name}, {images} image(s)")
    if policies.problems:
        print(f"{len(policies.problems)} problem(s) found", file=sys.stderr)
        return 1
    return 0

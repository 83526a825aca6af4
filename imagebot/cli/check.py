"""``imagebot check``: validate every policy file (and registries.yaml); exit 1 on any problem."""

from __future__ import annotations

import argparse
import sys

from imagebot.cli import common
from imagebot.cli.options import add_registry_arguments
from imagebot.errors import PolicyError

NAME = "check"
HELP = "validate the policy files and registries.yaml, reporting every problem with file:line"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_policy_arguments(parser)
    add_registry_arguments(parser, insecure=False)


def run(args: argparse.Namespace) -> int:
    policies = common.load(args)
    problems = list(policies.problems)
    try:
        common.registry_settings(args)
    except PolicyError as exc:
        problems.extend(exc.problems)
    for problem in problems:
        print(f"error: {problem}")
    for loaded in policies.environments:
        for warning in loaded.warnings:
            print(f"warning: {warning}")
        promote = loaded.policy.promote
        if promote is not None and promote.checks:
            # The checks gate asks the forge for commit statuses; until a forge API is
            # configured it cannot see them, so it blocks rather than promote unchecked.
            print(
                f"warning: {loaded.at('promote.checks')}: promote.checks: commit statuses"
                " cannot be read (no forge API configured), so promotions into"
                f" {loaded.name} wait at the checks gate"
            )
        images = len(loaded.policy.images)
        print(f"ok: {loaded.source}: environment {loaded.name}, {images} image(s)")
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    return 0

"""``imagebot schema``: print the JSON Schema of policy files, for editors."""

from __future__ import annotations

import argparse
import json

from imagebot.core.policy import policy_json_schema

NAME = "schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(json.dumps(policy_json_schema(), indent=2))
    return 0

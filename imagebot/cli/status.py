"""``imagebot status``: per environment and image, what runs, since when, what comes next
and which gate or hold it waits for — from git and the registries, changing nothing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from imagebot.cli import cycle, options
from imagebot.core.promotion.record import ImageRecord
from imagebot.engine import CycleResult

NAME = "status"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_cycle_arguments(parser, explain=False)


def run(args: argparse.Namespace) -> int:
    result = cycle.cycle(args, publish=False, verdicts=args.output == "json")
    if args.output == "json":
        json.dump(status_json(result), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(status_text(result))
    return 0 if result.ok else 1


def status_json(result: CycleResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "problems": list(result.problems),
        "environments": [
            {
                "environment": r.plan.environment,
                "policy": r.plan.source,
                "promote_from": r.images[0].upstream if r.images else None,
                "images": [s.to_json() for s in r.images],
                "problems": list(r.plan.problems) + ([r.error] if r.error else []),
            }
            for r in result.environments
        ],
    }


def _cell(s: ImageRecord) -> list[str]:
    run = s.running
    running = (run.tag or "(none)") + (f"@{run.digest[:19]}" if run.digest else "")
    since = "-"
    if run.since is not None and run.commit is not None:
        since = f"{run.since:%Y-%m-%d %H:%M %Z} {run.commit[:10]}"
        since += f" ({run.manual})" if run.manual else ""
    env = s.environment + (f" (from {s.upstream})" if s.upstream else "")
    if s.blocker:
        state = f"waiting: {s.blocker}"
    elif s.holds:
        state = f"held: {s.holds[0].words()}"
    elif s.choice:
        state = "moves next cycle"
    else:
        state = "up to date"
    return [env, s.image, running, since, s.choice or "-", state]


def status_text(result: CycleResult) -> str:
    """A table a person reads at a glance, then every problem."""
    head = ["ENVIRONMENT", "IMAGE", "RUNNING", "SINCE", "NEXT", "STATE"]
    rows = [_cell(s) for r in result.environments for s in r.images]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head) - 1)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in [head, *rows]
    ]
    lines += [f"error: {p}" for p in result.problems]
    for r in result.environments:
        lines += [f"error: {p}" for p in r.plan.problems]
        if r.error:
            lines.append(f"error: {r.error}")
    return "\n".join(line.rstrip() for line in lines) + "\n"

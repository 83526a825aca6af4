"""Options and output shared by the cycle commands (check, plan, apply)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from imagebot import config, engine
from imagebot.cli.options import (
    add_cache_dir_argument,
    add_git_timeout_argument,
    add_registry_arguments,
    default_cache_dir,
)
from imagebot.core.governing import Governed
from imagebot.core.plan import Change, EnvironmentPlan
from imagebot.core.selection import Verdict, explain_lines
from imagebot.core.selectmemo import SelectionMemo
from imagebot.daemon.runtime import Runtime
from imagebot.engine import CycleResult
from imagebot.registry.settings import RegistriesSettings, load_registries
from imagebot.registry.tags import newness


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        default=Path(os.environ.get("IMAGEBOT_POLICIES", "policies")),
        metavar="DIR",
        help="directory of policy files, one per environment (default: ./policies)",
    )
    parser.add_argument(
        "--environment",
        "-e",
        action="append",
        default=[],
        metavar="NAME",
        help="only this environment (repeatable; default: all)",
    )


def add_cycle_arguments(parser: argparse.ArgumentParser, *, explain: bool = True) -> None:
    add_policy_arguments(parser)
    add_cache_dir_argument(parser)
    add_registry_arguments(parser)
    add_git_timeout_argument(parser)
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text")
    parser.add_argument(
        "--now",
        type=_timestamp,
        default=None,
        metavar="TIME",
        help="judge promotion gates (soak, windows, freezes) and min_age as of this ISO 8601"
        " time instead of the system clock, e.g. 2026-12-04T18:00+01:00; commits made by"
        " apply are dated at it too (for rehearsals and demos)",
    )
    if not explain:
        return
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print which policy entry governs each reference, and every tag of every image"
        " with the rule that accepted or rejected it",
    )


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time (e.g. 2026-12-04T18:00+01:00)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load(args: argparse.Namespace) -> config.PolicySet:
    """Load the policy set, keeping only the environments asked for."""
    policies = config.load_policies(args.policies)
    wanted = set(args.environment)
    if not wanted:
        return policies
    known = {p.name for p in policies.environments}
    missing = [f"{args.policies}: no environment named {n!r}" for n in sorted(wanted - known)]
    return config.PolicySet(
        environments=tuple(p for p in policies.environments if p.name in wanted),
        problems=policies.problems + tuple(missing),
        catalog=policies.catalog,
    )


def change_json(c: Change) -> dict[str, Any]:
    return {
        "environment": c.environment,
        "image": c.image,
        "repository": c.repository,
        "file": c.file,
        "line": c.line,
        "field": c.field,
        "kind": c.kind,
        "from": {"tag": c.old_tag, "digest": c.old_digest},
        "to": {"tag": c.new_tag, "digest": c.new_digest},
        "image_digest": c.image_digest,
        "reason": c.reason,
    }


def by_version(verdicts: Sequence[Verdict]) -> tuple[Verdict, ...]:
    """Verdicts oldest to newest by version (other tags first, in natural order): registries
    list tags in whatever order they keep them."""
    return tuple(sorted(verdicts, key=lambda v: newness(v.tag)))


def plan_json(plan: EnvironmentPlan, *, explain: bool = False) -> dict[str, Any]:
    """A plan as JSON; with ``explain``, every tag's verdict under each decision."""
    return {
        "environment": plan.environment,
        "policy": plan.source,
        "changes": [change_json(c) for c in plan.changes],
        "decisions": [
            {
                "image": image,
                "current": current,
                "chosen": d.tag,
                "reason": d.reason,
                **(
                    {
                        "verdicts": [
                            {"tag": v.tag, "accepted": v.accepted, "reason": v.reason}
                            | (
                                {"gate": v.rejection.gate, "data": dict(v.rejection.data or {})}
                                if v.rejection is not None
                                else {}
                            )
                            for v in by_version(d.verdicts)
                        ]
                    }
                    if explain
                    else {}
                ),
            }
            for image, current, d in plan.decisions
        ],
        "problems": list(plan.problems),
        "diff": plan.diff(),
        **({"governed": [governed_json(g) for g in plan.governed]} if explain else {}),
    }


def governed_json(g: Governed) -> dict[str, Any]:
    return {
        "image": g.image,
        "repository": g.repository,
        "entry": g.entry,
        "targets": [{"file": path, "line": t.line, "field": t.field} for path, t in g.targets],
    }


def print_result(
    result: CycleResult, *, output: str, published: bool, explain: bool = False
) -> None:
    if output == "json":
        doc = {
            "ok": result.ok,
            "problems": list(result.problems),
            "environments": [
                {
                    **plan_json(r.plan, explain=explain),
                    "commit": r.commit,
                    "publication": r.publication,
                    "error": r.error,
                }
                for r in result.environments
            ],
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = sys.stdout
    for problem in result.problems:
        out.write(f"error: {problem}\n")
    for r in result.environments:
        plan = r.plan
        out.write(plan.diff())
        for c in plan.changes:
            out.write(f"{c.summary()}\n    why: {c.reason}\n")
        if explain:
            for g in plan.governed:
                out.write(f"{plan.environment}: {g.repository} governed by {g.entry}:\n")
                out.writelines(f"    {path}:{t.line} {t.field}\n" for path, t in g.targets)
            for image, current, d in plan.decisions:
                out.write(f"{plan.environment}: {image} (running {current or 'no tag'}):\n")
                ordered = replace(d, verdicts=by_version(d.verdicts))
                out.writelines(f"    {line}\n" for line in explain_lines(ordered))
        for image, current, d in plan.decisions:
            if d.tag is None or d.tag == current:
                out.write(
                    f"{plan.environment}: {image} stays at {current or '(none)'}: {d.reason}\n"
                )
        for problem in plan.problems:
            out.write(f"error: {problem}\n")
        if r.error:
            out.write(f"error: {r.error}\n")
        if r.publication:
            out.write(f"{plan.environment}: {r.publication}\n")
        if r.commit:
            out.write(f"{plan.environment}: pushed {r.commit}\n")
        elif not plan.changes and not r.error and not plan.problems:
            out.write(f"{plan.environment}: up to date\n")
        elif plan.changes and not published and not r.error:
            out.write(f"{plan.environment}: {len(plan.changes)} change(s) planned\n")


def run_cycle_command(args: argparse.Namespace, *, publish: bool) -> int:
    """Load policies, run one cycle, print the result; 0 when everything went through."""
    result = cycle(args, publish=publish)
    print_result(result, output=args.output, published=publish, explain=args.explain)
    return 0 if result.ok else 1


def cycle(args: argparse.Namespace, *, publish: bool) -> CycleResult:
    """Load policies and run one cycle as the command line asks."""
    cache_dir: Path = args.cache_dir or default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    policies = load(args)
    settings = registry_settings(args)
    now: datetime | None = args.now
    results: list[CycleResult] = []

    # The cycle's task returns nothing: on Python 3.11, asyncio.Runner formats the main task
    # (its result included) when it checks the SIGINT handler at exit, and the full repr of
    # a cycle's result at 5,000 images cost seconds and hundreds of megabytes.
    async def run() -> None:
        # The same runtime `imagebot serve` keeps open, here for a single cycle.
        clock = (lambda: now) if now is not None else engine.utc_now
        async with Runtime(settings=settings, cache_dir=cache_dir, clock=clock) as runtime:
            # Decisions from earlier runs answer for unchanged repositories (not with
            # --explain: stored decisions keep no per-tag verdicts).
            explain = getattr(args, "explain", False)
            memo = SelectionMemo(store=runtime.cache, keep_verdicts=explain)
            results.append(
                await runtime.run_cycle(
                    policies.environments,
                    publish=publish,
                    problems=policies.problems,
                    catalog=policies.catalog,
                    git_timeout=args.git_timeout,
                    # Plain-text plan output shows no image digest: fetch only those pinned.
                    image_digests=publish or args.output == "json",
                    memo=memo,
                )
            )

    anyio.run(run)
    (result,) = results
    return result


def registry_settings(args: argparse.Namespace) -> RegistriesSettings:
    """registries.yaml (given, or beside the policies) plus --insecure-registry hosts."""
    path: Path | None = args.registries
    if path is None:
        beside = getattr(args, "policies", None)
        if beside is not None and (beside / "registries.yaml").is_file():
            path = beside / "registries.yaml"
    settings = load_registries(path) if path is not None else RegistriesSettings()
    return settings.with_insecure(frozenset(getattr(args, "insecure_registry", ())))

"""One cycle from the command line (check, plan, apply, status): load the policies asked
for and the registry settings, run the cycle, print it."""

from __future__ import annotations

import argparse
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import anyio

from imagebot import config, livefile
from imagebot.cli.options import default_cache_dir
from imagebot.cli.render import print_result
from imagebot.clock import utc_now
from imagebot.core.selectmemo import SelectionMemo
from imagebot.daemon.runtime import Runtime
from imagebot.engine import CycleResult
from imagebot.git.repo import DEFAULT_TIMEOUT
from imagebot.policysource import GitPolicies
from imagebot.registry.settings import RegistriesSettings, load_registries


def policy_directory(args: argparse.Namespace) -> Path:
    """``--policies``; from git, fetched and checked out first (once per command)."""
    if isinstance(args.policies, GitPolicies):
        cache_dir = getattr(args, "cache_dir", None) or default_cache_dir()
        timeout = getattr(args, "git_timeout", DEFAULT_TIMEOUT)
        args.policy_checkout = args.policies.fetch(cache_dir, timeout=timeout)
        args.policies = args.policy_checkout.directory
    return Path(args.policies)


def load(args: argparse.Namespace) -> config.PolicySet:
    """Load the policy set, keeping only the environments asked for."""
    policies = config.load_policies(policy_directory(args))
    if checkout := getattr(args, "policy_checkout", None):
        policies = replace(policies, problems=checkout.located(policies.problems))
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


def run_cycle_command(args: argparse.Namespace, *, publish: bool) -> int:
    """Load policies, run one cycle, print the result; 0 when everything went through."""
    result = cycle(args, publish=publish)
    print_result(result, output=args.output, published=publish, explain=args.explain)
    return 0 if result.ok else 1


def cycle(args: argparse.Namespace, *, publish: bool, verdicts: bool = False) -> CycleResult:
    """Load policies and run one cycle as the command line asks; with ``verdicts`` every
    candidate's verdict is kept in the decision record."""
    cache_dir: Path = args.cache_dir or default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    policies = load(args)
    settings = registry_settings(args)
    verdicts = verdicts or getattr(args, "explain", False)

    now: datetime | None = args.now
    results: list[CycleResult] = []

    # The cycle's task returns nothing: on Python 3.11, asyncio.Runner formats the main task
    # (its result included) when it checks the SIGINT handler at exit, and the full repr of
    # a cycle's result at 5,000 images cost seconds and hundreds of megabytes.
    async def run() -> None:
        # The same runtime `imagebot serve` keeps open, here for a single cycle.
        clock = (lambda: now) if now is not None else utc_now
        async with Runtime(settings=settings, cache_dir=cache_dir, clock=clock) as runtime:
            # Decisions from earlier runs answer for unchanged repositories (not when every
            # verdict is wanted: stored decisions keep none).
            memo = SelectionMemo(store=runtime.cache, keep_verdicts=verdicts)
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


def registry_settings(args: argparse.Namespace, beside: Path | None = None) -> RegistriesSettings:
    """registries.yaml (given, or beside the policies) plus --insecure-registry hosts; read
    again only when the file changed (``serve`` asks before every cycle)."""
    path: Path | None = args.registries
    if path is None:
        beside = beside or (policy_directory(args) if hasattr(args, "policies") else None)
        if beside is not None and (beside / "registries.yaml").is_file():
            path = beside / "registries.yaml"
    settings = (
        livefile.read(path, load_registries, what="registries file")
        if path is not None
        else RegistriesSettings()
    )
    return settings.with_insecure(frozenset(getattr(args, "insecure_registry", ())))

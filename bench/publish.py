"""Benchmark: publishing 50 environments of one repo in one cycle.

One bare git remote holds 50 environments (``envs/env-00`` … ``envs/env-49``), each a
Deployment on ``acme/app:1.0.0``; a real ``docker-registry`` on loopback serves 1.0.0 and
1.1.0 with source annotations, so every environment has one change. One ``apply`` cycle
(``engine.run_cycle`` in-process, cold clone cache) publishes all 50:

(a) commit mode: 50 commits pushed to ``main``, budget ≤ 3 s;
(b) pull-request mode against the local GitHub server of the test suite: 50 branches and
    50 pull requests (labels, a reviewer), budget ≤ 5 s;
(c) pull-request mode again with nothing new: no push, no API write (reported, not budgeted).

    python bench/publish.py [--environments 50] [--rounds 3]
"""

# ruff: noqa: E402 -- sys.path is fixed before the imports (see below)
from __future__ import annotations

import sys
from pathlib import Path

# Replace the script's own directory on the path before anything imports ``select``:
# bench/select.py would shadow the stdlib module subprocess (and so GitPython) needs.
ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)

import argparse
import subprocess
import tempfile
import textwrap
import time

import anyio

from imagebot import logs
from imagebot.config import load_policies
from imagebot.engine import CycleResult, run_cycle
from imagebot.publisher import Publishers
from imagebot.registry.client import RegistryClient
from tests.support.forges import ForgeServer, run_forge
from tests.support.gitenv import DEPLOYMENT, make_remote
from tests.support.registry import Registry, push_image, run_registry

TOKEN = "bench-token"
BUDGET_COMMIT = 3.0
BUDGET_PULL = 5.0


def write_policies(
    directory: Path, remote: Path, image: str, count: int, forge: ForgeServer | None
) -> None:
    directory.mkdir()
    for i in range(count):
        publish = "publish: commit\n"
        if forge is not None:
            publish = textwrap.dedent(
                f"""\
                publish:
                  mode: pull-request
                  forge: {{type: github, url: {forge.url}, project: acme/environments,
                          token_env: FORGE_TOKEN}}
                  labels: [imagebot]
                  reviewers: [alice]
                """
            )
        (directory / f"env-{i:02d}.yaml").write_text(
            f"environment: env-{i:02d}\nrepo: {{url: {remote}, path: envs/env-{i:02d}}}\n"
            f"{publish}images:\n  - name: app\n    repository: {image}\n    range: '^1.0'\n"
        )


def cycle(policies: Path, cache: Path) -> tuple[float, CycleResult]:
    async def run() -> CycleResult:
        loaded = load_policies(policies)
        async with (
            RegistryClient() as client,
            Publishers(environ={"FORGE_TOKEN": TOKEN}) as publishers,
        ):
            return await run_cycle(
                loaded.environments,
                registry=client,
                repos_dir=cache,
                publish=True,
                publishers=publishers,
            )

    started = time.perf_counter()
    result = anyio.run(run)
    elapsed = time.perf_counter() - started
    if not result.ok:
        failed = [r.error or r.plan.problems for r in result.environments if not r.ok]
        raise SystemExit(f"cycle failed: {result.problems or failed[:3]}")
    return elapsed, result


def one_round(registry: Registry, image: str, count: int) -> tuple[float, float, float, int]:
    files = {
        f"envs/env-{i:02d}/app.yaml": DEPLOYMENT.format(image=image).encode() for i in range(count)
    }
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        remote = make_remote(root / "commit", files)
        write_policies(root / "p-commit", remote, image, count, None)
        commit_s, result = cycle(root / "p-commit", root / "cache-commit")
        assert sum(r.commit is not None for r in result.environments) == count
        log = subprocess.run(["git", "rev-list", "--count", "main"], cwd=remote,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert int(log) == count + 1, log

        remote = make_remote(root / "pull", files)
        with run_forge("github", remote, token=TOKEN) as forge:
            write_policies(root / "p-pull", remote, image, count, forge)
            pull_s, _ = cycle(root / "p-pull", root / "cache-pull")
            assert len(forge.open_pulls()) == count, len(forge.open_pulls())
            writes = len(forge.writes)
            again_s, result = cycle(root / "p-pull", root / "cache-pull")
            assert len(forge.writes) == writes
            assert all(r.commit is None for r in result.environments)
            requests = len(forge.requests)
    return commit_s, pull_s, again_s, requests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="best time of this many runs")
    args = parser.parse_args()
    logs.configure(level="error")
    with tempfile.TemporaryDirectory() as work, run_registry(Path(work)) as registry:
        annotations = {"org.opencontainers.image.source": "https://github.com/acme/app"}
        for tag in ("1.0.0", "1.1.0"):
            push_image(registry, "acme/app", tag, annotations={
                **annotations, "org.opencontainers.image.revision": f"rev-{tag}"})  # fmt: skip
        image = f"{registry.host}/acme/app"
        rounds = [one_round(registry, image, args.environments) for _ in range(args.rounds)]
    commit_s = min(r[0] for r in rounds)
    pull_s = min(r[1] for r in rounds)
    again_s = min(r[2] for r in rounds)
    n = args.environments
    print(f"environments: {n} in one repo, one change each; best of {args.rounds} rounds")
    print(f"(a) commit mode:        {commit_s:5.2f} s  {n} commits pushed budget {BUDGET_COMMIT} s")
    print(f"(b) pull-request mode:  {pull_s:5.2f} s  {n} branches + PRs budget {BUDGET_PULL} s")
    print(f"(c) again, nothing new: {again_s:5.2f} s  no push, no API write")
    ok = commit_s <= BUDGET_COMMIT and pull_s <= BUDGET_PULL
    print("budgets met" if ok else "BUDGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

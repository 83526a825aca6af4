"""Benchmark: ``imagebot plan`` over K images in one environment repo, against the floor.

For each K (default 100, 1,000 and 5,000): K repositories ``bench/svcNNNNN`` with tags
1.0.0…1.0.99 in a real local registry (its filesystem storage written directly, as
bench/registry_scan.py does), one environment repo holding K Deployments at 1.0.0, one
policy entry per image (``range: ^1.0``). In one run and against one registry process:

(a) the floor — a fresh ``python`` doing one GET tags/list per repository at the
    concurrency imagebot uses for a loopback registry;
(b) ``imagebot plan`` with an empty cache directory (cold: clone, every tag first seen);
(c) ``imagebot plan`` again with that cache directory (warm: every repository listed again);
(d) ``imagebot plan`` again with ``scan_interval: 600`` for the registry (interval: the
    listings (c) made are reused, as a cycle within a registry's scan interval does).

Every image moves to 1.0.99 in every run (plan publishes nothing). Each round runs (a) to
(d) in turn; the best wall time of ``--rounds`` rounds is kept (the machine is shared), the
worst RSS and request count. Requests are counted from the registry's access log, peak RSS
from ``wait4``. Also timed: ``imagebot --version`` (best of 5), and a service's second cycle
(two cycles in one process, as ``imagebot serve`` runs them).

Budgets: per-image cost at the largest K within 1.3x of the smallest; cold within 1.8x of
the floor at K=1,000; warm at least 30% cheaper than cold at K=1,000 (shown for (c) and
(d)); RSS < 250 MB at the largest K; ``imagebot --version`` < 0.1 s; at most one
``sqlite3.connect`` call site in imagebot/ (the one cache).

    python bench/cycle.py [--images 100,1000,5000] [--rounds 2] [--data bench/.data]
"""

# ruff: noqa: E402  (the path must be fixed before the first import that pulls in ``select``)
from __future__ import annotations

import sys

# bench/select.py would shadow the stdlib module: put the checkout first (see registry_scan).
sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from bench.registry_scan import FLOOR, access_count, write_tags
from imagebot.registry.settings import builtin_defaults
from tests.support.gitenv import make_remote
from tests.support.registry import run_registry

TAGS = [f"1.0.{n}" for n in range(100)]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: {image}:1.0.0
"""


# Cycles in one process, as a long-running service runs them: the same policies, registry
# client, cache and selection memo; each cycle's wall and CPU time is printed.
SERVICE = """
import sys, time, anyio
from pathlib import Path
from imagebot import engine, logs
from imagebot.config import load_policies
from imagebot.core.selectmemo import SelectionMemo
from imagebot.cache import Cache
from imagebot.registry.connect import connect
from imagebot.registry.settings import RegistriesSettings
logs.configure(level="warning")
policies, cache_dir = Path(sys.argv[1]), Path(sys.argv[2])
async def main():
    loaded = load_policies(policies).environments
    memo = SelectionMemo()
    cache = Cache(cache_dir / "registry.sqlite")
    async with connect(RegistriesSettings(), cache=cache) as registry:
        for _ in range(2):
            wall, cpu = time.perf_counter(), time.process_time()
            result = await engine.run_cycle(
                loaded, registry=registry, repos_dir=cache_dir / "repos", publish=False,
                memo=memo, image_digests=False, cache=cache,
            )
            changes = sum(len(r.plan.changes) for r in result.environments)
            print(time.perf_counter() - wall, time.process_time() - cpu, changes)
    cache.close()
anyio.run(main)
"""


def timed(cmd: list[str]) -> tuple[float, int, float, bytes]:
    """(wall seconds, peak RSS bytes, CPU seconds, stdout) of a child process. CPU time
    (user + system) is given beside wall time: on a shared machine it varies less."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{cmd[:4]}... exited {os.waitstatus_to_exitcode(status)}")
        out.seek(0)
        return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime, out.read()


def names(k: int) -> list[str]:
    return [f"bench/svc{i:05d}" for i in range(k)]


def populate(storage: Path, repositories: list[str]) -> None:
    """Write tags 1.0.0…1.0.99 of each repository into the registry's storage layout."""
    marker = storage / f".cycle-{len(repositories)}"
    if not marker.exists():
        write_tags(storage, repositories, TAGS)
        marker.write_text("done\n")


def environment(work: Path, host: str, repositories: list[str], *, pattern: bool = False) -> Path:
    """A policies directory for one environment whose repo holds one Deployment per image:
    one policy entry per image, or with ``pattern`` one entry for ``bench/*``."""
    files = {
        f"envs/dev/{name.rsplit('/', 1)[1]}.yaml": DEPLOYMENT.format(
            name=name.rsplit("/", 1)[1], image=f"{host}/{name}"
        ).encode()
        for name in repositories
    }
    remote = make_remote(work / "env", files)
    policies = work / "policies"
    policies.mkdir()
    entries = "".join(
        f"  - {{name: {name.rsplit('/', 1)[1]}, repository: {host}/{name}, range: '^1.0'}}\n"
        for name in repositories
    )
    if pattern:
        entries = f"  - {{name: bench, repository: '{host}/bench/*', range: '^1.0'}}\n"
    (policies / "dev.yaml").write_text(
        f"environment: dev\nrepo: {{url: {remote}, path: envs/dev}}\nimages:\n{entries}"
    )
    return policies


def version_time() -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "imagebot", "--version"], check=True, capture_output=True
        )
        best = min(best, time.perf_counter() - started)
    return best


def import_total(*args: str) -> tuple[float, int]:
    """``python -X importtime -m imagebot ARGS``: (seconds importing, modules imported)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imagebot", *args],
        capture_output=True,
        check=False,
    ).stderr.decode()
    rows = [line.split("|") for line in err.splitlines() if line.startswith("import time:")]
    rows = [r for r in rows if r[1].strip().isdigit()]
    top = sum(int(r[1]) for r in rows if not r[2].startswith("  "))  # outermost imports
    return top / 1e6, len(rows)


def sqlite_connects() -> int:
    """``sqlite3.connect(`` call sites in the package's source."""
    return sum(p.read_text().count("sqlite3.connect(") for p in (ROOT / "imagebot").rglob("*.py"))


def run_k(
    k: int, storage: Path, rounds: int, *, pattern: bool
) -> dict[str, tuple[float, int, int, float]]:
    repositories = names(k)
    populate(storage, repositories)
    with tempfile.TemporaryDirectory() as tmp, run_registry(Path(tmp), storage=storage) as reg:
        work = Path(tmp)
        policies = environment(work, reg.host, repositories, pattern=pattern)
        concurrency = builtin_defaults(reg.host)["concurrency"]
        floor = [sys.executable, "-c", FLOOR, reg.url, str(concurrency), *repositories]
        runs: dict[str, list[tuple[float, int, int, float]]] = {
            "floor": [],
            "cold": [],
            "warm": [],
            "interval": [],
            "service": [],
        }
        interval = work / "registries-interval.yaml"
        interval.write_text(f"registries:\n  {reg.host}:\n    scan_interval: 600\n")
        for round_ in range(rounds):
            plan = [sys.executable, "-m", "imagebot", "--log-level", "warning", "plan"]
            plan += ["--policies", str(policies), "--cache-dir", str(work / f"cache-{round_}")]
            steps = (
                ("floor", floor),
                ("cold", plan),
                ("warm", plan),
                ("interval", [*plan, "--registries", str(interval)]),
            )
            for kind, cmd in steps:
                before = access_count(reg.log)
                seconds, rss, cpu, out = timed(cmd)
                runs[kind].append((seconds, rss, access_count(reg.log) - before, cpu))
                if kind == "floor":
                    assert int(out) == k * len(TAGS), out
                    continue
                if kind == "interval":  # the listings made a moment ago are reused
                    assert runs[kind][-1][2] == 0, runs[kind][-1]
                assert out.count(b" -> 1.0.99 ") == k, out[-2000:]
            # A service's second cycle (the first one, in the same process, warmed it up).
            service = [sys.executable, "-c", SERVICE, str(policies), str(work / f"svc-{round_}")]
            before = access_count(reg.log)
            _, rss, _, out = timed(service)
            (first, second) = [line.split() for line in out.decode().splitlines()]
            assert first[2] == second[2] == str(k), out
            requests = (access_count(reg.log) - before) // 2
            runs["service"].append((float(second[0]), rss, requests, float(second[1])))
    return {
        kind: (
            min(r[0] for r in rs),
            max(r[1] for r in rs),
            max(r[2] for r in rs),
            min(r[3] for r in rs),
        )
        for kind, rs in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="100,1000,5000", help="comma-separated K values")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--rounds", type=int, default=2, help="best time of this many runs")
    parser.add_argument(
        "--pattern", action="store_true", help="one `bench/*` pattern entry, not one per image"
    )
    args = parser.parse_args()
    ks = [int(k) for k in args.images.split(",")]
    storage = args.data / "cycle-storage"
    mb = 1024 * 1024
    results = {}
    policy = "one pattern entry" if args.pattern else "one entry per image"
    print(f"imagebot plan, one environment, K images x {len(TAGS)} tags, {policy}")
    print(f"best wall and CPU time of {args.rounds} rounds, worst RSS and request count")
    print(
        f"{'K':>6} {'run':<6} {'wall':>8} {'per image':>10} {'CPU':>8} {'RSS':>9} {'requests':>9}"
    )
    for k in ks:
        results[k] = run_k(k, storage, args.rounds, pattern=args.pattern)
        for kind, (seconds, rss, requests, cpu) in results[k].items():
            print(
                f"{k:>6} {kind:<6} {seconds:7.2f}s {seconds / k * 1000:8.2f}ms {cpu:7.2f}s"
                f" {rss / mb:7.1f}MB {requests:>9}"
            )
    version = version_time()
    print(f"imagebot --version     {version:.3f} s (best of 5; budget < 0.1 s)")
    for args in (["--version"], ["--help"], ["tags", "--help"], ["plan", "--help"]):
        seconds, modules = import_total(*args)
        label = "imagebot " + " ".join(args)
        print(f"importtime {label:<24} {seconds * 1000:6.0f} ms  {modules:4d} modules")
    small, large = min(ks), max(ks)
    per_small = results[small]["cold"][0] / small
    per_large = results[large]["cold"][0] / large
    checks = [
        (f"per image K={large} / K={small} (cold)", per_large / per_small, "<= 1.30"),
        (f"RSS MB at K={large}", max(results[large][r][1] for r in ("cold", "warm")) / mb, "< 250"),
        ("--version seconds", version, "< 0.1"),
        ("sqlite3.connect call sites", sqlite_connects(), "<= 1"),
    ]
    if 1000 in results:
        r = results[1000]
        checks.append(("cold / floor at K=1000", r["cold"][0] / r["floor"][0], "<= 1.80"))
        checks.append(("warm / cold at K=1000", r["warm"][0] / r["cold"][0], "<= 0.70"))
        checks.append(
            ("warm with scan_interval / cold", r["interval"][0] / r["cold"][0], "<= 0.70")
        )
    ok = True
    for label, value, budget in checks:
        op, limit = budget.split()
        met = value <= float(limit) if op == "<=" else value < float(limit)
        ok = ok and met
        print(f"{label:<34}{value:8.2f}  (budget {budget}) {'met' if met else 'NOT MET'}")
    if 1000 in results:
        service = results[1000]["service"][0] / results[1000]["cold"][0]
        print(f"{'service cycle / cold at K=1000':<34}{service:8.2f}  (a daemon's second cycle)")
    print("budget                            " + ("met" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

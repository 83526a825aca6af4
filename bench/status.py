"""Benchmark: the status page and ``/api/v1/status`` at 5 environments × 1,000 images, alone
and beside a cycle.

A real ``Service`` over five policy files (dev → … → production, 1,000 images each) holds
one decision record per image as a cycle leaves them (a fifth waiting for soak, some held,
production with a pull request), and its Starlette app answers through httpx's ASGI
transport; the time measured is the server's (from the request to the response's last
byte): building the context, rendering, serialising. A ticker on the event loop measures
how long the loop went without running.

Then dev runs real cycles in the same process and event loop, as ``imagebot serve`` runs
them (a real ``docker-registry`` with 1,000 repositories, a real git remote with one
Deployment per image; planning only, so every cycle does the same work), each cycle's
records replacing dev's: three cycles alone, then three while a client asks for the page
and the API every 50 ms, the first request after each cycle rendering dev's new records.

Budgets: p95 < 100 ms for ``/api/v1/status`` and ``/``, also while a cycle runs; the page
< 1 MB of HTML; RSS growth for keeping the records < 30 MB; the loop never stalled for more
than 100 ms; a cycle beside the requests takes < 1.25x its time alone.

    python bench/status.py [--images 1000] [--environments 5] [--requests 100]
"""

# ruff: noqa: E402  (the path must be fixed before imagebot is imported)
from __future__ import annotations

import sys

sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import gc
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx

from bench.registry_scan import write_tags
from imagebot import engine, logs
from imagebot.cache import Cache
from imagebot.core.promotion.holds import Hold
from imagebot.core.promotion.record import Candidate, ImageRecord, PullRequestRecord, Running
from imagebot.core.selection import Rejection
from imagebot.core.selectmemo import SelectionMemo
from imagebot.daemon.app import build_app
from imagebot.daemon.events import LastCycle
from imagebot.daemon.service import ServeOptions, Service
from imagebot.registry.connect import connect
from imagebot.registry.settings import RegistriesSettings
from tests.support.gitenv import make_remote
from tests.support.registry import run_registry

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
NAMES = ("dev", "qa", "staging", "canary", "production")


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_policies(
    directory: Path, environments: int, images: int, *, host: str, remote: Path
) -> list[str]:
    """One policy file per environment, each naming the same images; dev's is real (the
    remote, the registry), the others only hold records."""
    names = list(NAMES[:environments]) + [f"env{n}" for n in range(len(NAMES), environments)]
    for i, name in enumerate(names):
        lines = [
            f"environment: {name}",
            f"repo: {{url: 'file://{remote}', branch: main, path: envs/{name}}}",
        ]
        if i:
            lines.append(f"promote: {{from: {names[i - 1]}, soak: 24h}}")
        if name == "production":
            lines.append(
                "publish: {mode: pull-request,"
                " forge: {type: github, project: acme/env, token_env: T}}"
            )
        lines.append("images:")
        lines += [
            f"  - {{name: app{n:04d}, repository: {host}/bench/app{n:04d}}}" for n in range(images)
        ]
        (directory / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return names


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{n:04d}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {host}/bench/app{n:04d}:1.0.0
"""


def populate(storage: Path, images: int) -> None:
    """Tags 1.0.0…1.0.9 of ``bench/appNNNN`` in the registry's storage, written once."""
    marker = storage / f".status-{images}"
    if not marker.exists():
        names = [f"bench/app{n:04d}" for n in range(images)]
        write_tags(storage, names, [f"1.0.{t}" for t in range(10)])
        marker.write_text("done\n")


def records(env: str, upstream: str | None, images: int) -> tuple[ImageRecord, ...]:
    out = []
    for n in range(images):
        sha = f"{n:040x}"
        waiting = (
            Rejection(
                "soak",
                f"1.{n % 9}.1 has run in {upstream} for 3h of 1d (21h left)",
                {"left_seconds": 75600.0},
            )
            if upstream and n % 5 == 0
            else None
        )
        holds = (
            (
                Hold(
                    f"app{n:04d}",
                    "1.0.9",
                    sha,
                    NOW - timedelta(days=2),
                    "Ann <ann@example.com>",
                    "breaks logins",
                ),
            )
            if n % 50 == 0
            else ()
        )
        pr = (
            PullRequestRecord(7, "https://github.com/acme/env/pull/7", "open")
            if env == "production"
            else None
        )
        out.append(
            ImageRecord(
                environment=env,
                image=f"app{n:04d}",
                repository=f"ghcr.io/acme/app{n:04d}",
                upstream=upstream,
                running=Running(f"1.{n % 9}.0", f"sha256:{n:064x}", NOW - timedelta(days=3), sha),
                candidates=(Candidate(f"1.{n % 9}.1", False, "soak", "rejected: soak"),)
                if waiting
                else (),
                choice=None,
                waiting=waiting,
                holds=holds,
                publish="pull-request" if pr else "commit",
                pull_request=pr,
            )
        )
    return tuple(out)


def p95(seen: list[float]) -> float:
    return statistics.quantiles(seen, n=20)[18] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=3, help="cycles alone, and beside requests")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data")
    args = parser.parse_args()
    logs.configure(level="warning")
    gc.set_threshold(50_000, 10, 10)  # as imagebot's main() sets it for every command
    storage = args.data / "status-storage"
    populate(storage, args.images)
    with tempfile.TemporaryDirectory() as tmp, run_registry(Path(tmp), storage=storage) as reg:
        work = Path(tmp)
        files = {
            f"envs/dev/app{n:04d}.yaml": DEPLOYMENT.format(n=n, host=reg.host).encode()
            for n in range(args.images)
        }
        remote = make_remote(work / "env", files)
        policies = work / "policies"
        policies.mkdir()
        names = write_policies(
            policies, args.environments, args.images, host=reg.host, remote=remote
        )
        service = Service(ServeOptions(policies=policies, cache_dir=work / "cache"))
        service.policies.load()
        gc.collect()
        before = rss()
        for i, name in enumerate(names):
            kept = records(name, names[i - 1] if i else None, args.images)
            service.last[name] = LastCycle(True, NOW, None, kept, 2.5)
            service.decisions.next_due[name] = NOW + timedelta(minutes=2)
        gc.collect()
        grown = (rss() - before) / 2**20
        app = build_app(service)
        served: list[float] = []  # server time of each request, first byte in to last byte out

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            start = time.perf_counter()

            async def sending(message: Any) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    served.append(time.perf_counter() - start)

            await app(scope, receive, sending)

        paths = ("/api/v1/status", "/")
        timings: dict[str, list[float]] = {path: [] for path in paths}
        busy: dict[str, list[float]] = {path: [] for path in paths}  # while a cycle runs
        sizes: dict[str, int] = {}
        # the event loop's longest waits, by what ran meanwhile
        stalls: dict[str, list[float]] = {
            phase: [0.0] for phase in ("idle", "requests", "cycles", "cycles beside requests")
        }
        phase = "idle"
        first: dict[str, float] = {}
        cycles: dict[str, list[float]] = {"alone": [], "beside requests": []}

        async def run() -> None:
            nonlocal phase
            done = anyio.Event()

            async def ticker() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await anyio.sleep(0.005)
                    now = time.perf_counter()
                    stalls[phase].append(now - last - 0.005)
                    last = now

            async def get(path: str, into: list[float]) -> None:
                reply = await client.get(path)
                into.append(served[-1])
                assert reply.status_code == 200, reply.text[:200]
                sizes[path] = len(reply.content)

            dev = service.policies.state.environments[names[0]]
            memo, cache = SelectionMemo(), Cache(work / "cache" / "registry.sqlite")

            async def cycle() -> float:
                start = time.perf_counter()
                result = await engine.run_cycle(
                    [dev], registry=registry, repos_dir=work / "cache" / "repos", publish=False,
                    memo=memo, cache=cache, image_digests=False,
                )  # fmt: skip
                seconds = time.perf_counter() - start
                (env,) = result.environments
                assert len(env.images) == args.images, env.error or env.plan.problems[:3]
                service.decisions.record(dev.name, env.ok, NOW, env.error, env, seconds)
                return seconds

            transport = httpx.ASGITransport(app=timed)
            async with (
                connect(RegistriesSettings(), cache=cache) as registry,
                httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(ticker)
                await anyio.sleep(1)  # the machine's own stalls, with nothing to render
                phase = "requests"
                # The first requests render every environment's records (timed apart); after
                # a cycle, the daemon renders them in the background.
                for path in paths:
                    assert (await client.get(path)).status_code == 200
                    first[path] = served[-1]
                for _ in range(args.requests):
                    for path in paths:
                        await get(path, timings[path])
                phase = "cycles"
                await cycle()  # the clone, the first listings: what a daemon does once
                for _ in range(args.cycles):
                    cycles["alone"].append(await cycle())
                cycling = anyio.Event()

                async def asking() -> None:
                    while not cycling.is_set():
                        for path in paths:
                            await get(path, busy[path])
                            await anyio.sleep(0.05)

                tg.start_soon(asking)
                phase = "cycles beside requests"
                for _ in range(args.cycles):
                    cycles["beside requests"].append(await cycle())
                cycling.set()
                done.set()
            cache.close()

        anyio.run(run)
    ok = True

    def report(label: str, value: float, limit: float, unit: str) -> None:
        nonlocal ok
        met = value < limit
        ok = ok and met
        print(
            f"{label:<44}{value:8.1f} {unit:<3} (budget < {limit:g}) {'met' if met else 'NOT MET'}"
        )

    print(f"{args.environments} environments x {args.images} images, {args.requests} requests each")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (timings scale with it)")
    for path, seen in timings.items():
        print(f"{path:<44}p50 {statistics.median(seen) * 1000:.1f} ms")
        report(f"{path} p95", p95(seen), 100, "ms")
    for path, seconds in first.items():
        print(f"{path + ' first, rendering every environment':<44}{seconds * 1000:8.1f} ms")
    report("page size", sizes["/"] / 2**20, 1, "MB")
    print(f"{'api size':<44}{sizes['/api/v1/status'] / 2**20:8.1f} MB")
    report("RSS growth keeping the records", grown, 30, "MB")
    for path, seen in busy.items():
        print(f"{path + ' while a cycle runs':<44}p50 {statistics.median(seen) * 1000:.1f} ms"
              f", {len(seen)} requests, slowest {max(seen) * 1000:.0f} ms")  # fmt: skip
        report(f"{path} p95 while a cycle runs", p95(seen), 100, "ms")
    alone, beside = (statistics.median(c) for c in cycles.values())
    for kind, seen in cycles.items():
        print(f"{'cycle of dev, ' + kind:<44}{', '.join(f'{c:.2f}' for c in seen)} s")
    report("cycle beside requests / alone (median)", beside / alone, 1.25, "x")
    print(f"{'longest event-loop stall, idle':<44}{max(stalls['idle']) * 1000:8.1f} ms")
    report("longest event-loop stall, serving requests", max(stalls["requests"]) * 1000, 100, "ms")
    for during in ("cycles", "cycles beside requests"):
        print(f"{'longest event-loop stall, ' + during:<44}{max(stalls[during]) * 1000:8.1f} ms")
    print("budget " + ("met" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the status page and ``/api/v1/status`` at 5 environments × 1,000 images.

A real ``Service`` over five policy files (dev → … → production, 1,000 images each) holds
one decision record per image as a cycle leaves them (a fifth waiting for soak, some held,
production with a pull request), and its Starlette app answers through httpx's ASGI
transport, so the time measured is the server's: building the context, rendering,
serialising. While pages render, a ticker on the event loop measures how long the loop
went without running (rendering runs in a worker thread and must not stall cycles).

Budgets: p95 < 100 ms for ``/api/v1/status`` and ``/``; the page < 1 MB of HTML; RSS growth
for keeping the records < 30 MB; the loop never stalled for more than 100 ms.

    python bench/status.py [--images 1000] [--environments 5] [--requests 40]
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

import anyio
import httpx

from imagebot.core.promotion.holds import Hold
from imagebot.core.promotion.record import Candidate, ImageRecord, PullRequestRecord, Running
from imagebot.core.selection import Rejection
from imagebot.daemon.app import build_app
from imagebot.daemon.events import LastCycle
from imagebot.daemon.service import ServeOptions, Service

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
NAMES = ("dev", "qa", "staging", "canary", "production")


def rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def write_policies(directory: Path, environments: int, images: int) -> list[str]:
    names = list(NAMES[:environments]) + [f"env{n}" for n in range(len(NAMES), environments)]
    for i, name in enumerate(names):
        lines = [
            f"environment: {name}",
            f"repo: {{url: https://git.example.com/acme/env.git, path: envs/{name}}}",
        ]
        if i:
            lines.append(f"promote: {{from: {names[i - 1]}, soak: 24h}}")
        if name == "production":
            lines.append("publish: {mode: pull-request, forge: {type: github, token_env: T}}")
        lines.append("images:")
        lines += [
            f"  - {{name: app{n:04d}, repository: ghcr.io/acme/app{n:04d}}}" for n in range(images)
        ]
        (directory / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return names


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    gc.set_threshold(50_000, 10, 10)  # as imagebot's main() sets it for every command
    with tempfile.TemporaryDirectory() as tmp:
        policies = Path(tmp) / "policies"
        policies.mkdir()
        names = write_policies(policies, args.environments, args.images)
        service = Service(ServeOptions(policies=policies, cache_dir=Path(tmp) / "cache"))
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
        timings: dict[str, list[float]] = {"/api/v1/status": [], "/": []}
        sizes: dict[str, int] = {}
        stalls: list[float] = []
        first: dict[str, float] = {}
        idle: list[float] = []

        async def run() -> None:
            done = anyio.Event()

            async def ticker() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await anyio.sleep(0.005)
                    now = time.perf_counter()
                    stalls.append(now - last - 0.005)
                    last = now

            transport = httpx.ASGITransport(app=app)
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(ticker)
                await anyio.sleep(1)  # the machine's own stalls, with nothing to render
                idle.extend(stalls)
                stalls.clear()
                # The first requests after a cycle render its records once (timed apart).
                for path in timings:
                    start = time.perf_counter()
                    assert (await client.get(path)).status_code == 200
                    first[path] = time.perf_counter() - start
                for _ in range(args.requests):
                    for path, seen in timings.items():
                        start = time.perf_counter()
                        reply = await client.get(path)
                        seen.append(time.perf_counter() - start)
                        assert reply.status_code == 200, reply.text[:200]
                        sizes[path] = len(reply.content)
                done.set()

        anyio.run(run)
    ok = True

    def report(label: str, value: float, limit: float, unit: str) -> None:
        nonlocal ok
        met = value < limit
        ok = ok and met
        print(
            f"{label:<40}{value:10.1f} {unit:<3} (budget < {limit:g}) {'met' if met else 'NOT MET'}"
        )

    print(f"{args.environments} environments x {args.images} images, {args.requests} requests each")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (timings scale with it)")
    for path, seen in timings.items():
        p95 = statistics.quantiles(seen, n=20)[18] * 1000
        print(f"{path:<40}p50 {statistics.median(seen) * 1000:.1f} ms")
        report(f"{path} p95", p95, 100, "ms")
    for path, seconds in first.items():
        print(f"{path + ' first after a cycle':<40}{seconds * 1000:10.1f} ms")
    report("page size", sizes["/"] / 2**20, 1, "MB")
    print(f"{'api size':<40}{sizes['/api/v1/status'] / 2**20:10.1f} MB")
    report("RSS growth keeping the records", grown, 30, "MB")
    report("longest event-loop stall", max(stalls) * 1000, 100, "ms")
    print(f"{'(longest stall, idle, for comparison)':<40}{max(idle) * 1000:10.1f} ms")
    print("budget " + ("met" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

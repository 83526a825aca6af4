"""Benchmark: ``imagebot tags`` over 300 repositories × 200 tags on a real local registry.

Populates the registry's filesystem storage directly (pushing 400,000 tags through the API
would take hours): ``docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link``
pointing at one real manifest blob. Then, in one run and against one registry process:

(a) the floor — a minimal async loop (httpx + anyio) doing one GET tags/list per repository
    at the same concurrency imagebot uses for a loopback registry;
(b) ``imagebot tags`` over the same repositories with a fresh cache (cold);
(c) ``imagebot tags`` again with that cache (warm).

Both (a) and (b) run as fresh ``python`` processes, so both pay interpreter start-up; each
round runs (a), (b), (c) in turn and the best wall time of ``--rounds`` rounds is kept.
Requests are counted from the registry's access log, peak RSS from ``wait4``.
Budget: (b) ≤ 1.3 × (a) wall time, peak RSS of (b) ≤ 200 MB, requests (c) ≤ requests (b).

At 300 repositories the start-up of a fresh ``imagebot`` process weighs most beside the
floor's; ``--repos 2000`` measures the scan itself.

    python bench/registry_scan.py [--repos 300] [--tags 200] [--data bench/.data]
"""

# ruff: noqa: E402  (the path must be fixed before the first import that pulls in ``select``)
from __future__ import annotations

import sys

# Put the checkout, not this script's directory, first on the path before anything imports
# ``select``: bench/select.py would shadow the stdlib module (subprocess, httpcore use it).
sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from imagebot.registry.settings import builtin_defaults
from tests.support.registry import run_registry

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 2,
        },
        "layers": [],
    },
    separators=(",", ":"),
).encode()

FLOOR = """
import sys, anyio, httpx
base, concurrency, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
async def main():
    limit = anyio.CapacityLimiter(concurrency)
    total = 0
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=concurrency), timeout=60
    ) as client:
        async def one(name):
            nonlocal total
            async with limit:
                r = await client.get(f"{base}/v2/{name}/tags/list")
            total += len(r.json()["tags"])
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
    print(total)
anyio.run(main)
"""


def write_tags(storage: Path, names: list[str], tags: list[str]) -> None:
    """Give every repository in ``names`` the tags ``tags``, all pointing at one real manifest
    blob, by writing the registry's storage layout directly (the API would take minutes)."""
    digest = hashlib.sha256(MANIFEST).hexdigest()
    v2 = storage / "docker" / "registry" / "v2"
    blob = v2 / "blobs" / "sha256" / digest[:2] / digest / "data"
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(MANIFEST)
    link = f"sha256:{digest}".encode()
    for n, name in enumerate(names):
        manifests = v2 / "repositories" / name / "_manifests"
        for path in (
            manifests / "revisions" / "sha256" / digest,
            *(manifests / "tags" / tag / "current" for tag in tags),
        ):
            path.mkdir(parents=True, exist_ok=True)
            (path / "link").write_bytes(link)
        if n % 200 == 199:
            print(f"  populated {n + 1}/{len(names)} repositories", file=sys.stderr)


def populate(storage: Path, repos: int, tags: int) -> list[str]:
    """Write the registry's storage layout directly; reuse it when already there."""
    names = [f"bench/app{i:04d}" for i in range(repos)]
    marker = storage / f".populated-{repos}x{tags}"
    if marker.exists():
        return names
    started = time.perf_counter()
    write_tags(storage, names, [f"{t // 100}.{(t // 10) % 10}.{t % 10}" for t in range(tags)])
    marker.write_text(f"{time.perf_counter() - started:.1f}s\n")
    return names


def access_count(log: Path) -> int:
    """Requests the registry served so far: one access-log line each."""
    with log.open("rb") as f:
        return sum(1 for line in f if b'"GET /v2/' in line or b'"HEAD /v2/' in line)


def timed(cmd: list[str]) -> tuple[float, int, bytes]:
    """(wall seconds, peak RSS in bytes, stdout) of a child process."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:4]}… exited {proc.returncode}")
        out.seek(0)
        return wall, usage.ru_maxrss * 1024, out.read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / ".data")
    parser.add_argument("--rounds", type=int, default=2, help="best time of this many runs")
    args = parser.parse_args()

    storage = args.data / "registry-storage"
    print(f"populating {args.repos} repositories × {args.tags} tags in {storage}")
    names = populate(storage, args.repos, args.tags)
    with tempfile.TemporaryDirectory() as work, run_registry(Path(work), storage=storage) as reg:
        concurrency = builtin_defaults(reg.host)["concurrency"]
        refs = [f"{reg.host}/{name}" for name in names]
        floor_cmd = [sys.executable, "-c", FLOOR, reg.url, str(concurrency), *names]
        runs: dict[str, list[tuple[float, int, int]]] = {"floor": [], "cold": [], "warm": []}
        outputs: dict[str, bytes] = {}
        # Alternate the floor and imagebot each round and keep each one's best time, so a
        # noisy neighbour on a 2-core machine does not decide the ratio.
        for round_ in range(args.rounds):
            cache = Path(work) / f"registry-{round_}.sqlite"
            imagebot = [sys.executable, "-m", "imagebot", "--log-level", "warning", "tags"]
            imagebot += ["--output", "json", "--cache", str(cache), *refs]
            for kind, cmd in (("floor", floor_cmd), ("cold", imagebot), ("warm", imagebot)):
                before = access_count(reg.log)
                seconds, rss, out = timed(cmd)
                runs[kind].append((seconds, rss, access_count(reg.log) - before))
                outputs[kind] = out
    floor_s, floor_rss, floor_requests = min(runs["floor"])
    cold_s, cold_rss, cold_requests = min(runs["cold"])
    warm_s, warm_rss, warm_requests = min(runs["warm"])
    cold_rss = max(r[1] for r in runs["cold"])
    warm_rss = max(r[1] for r in runs["warm"])
    cold_requests = max(r[2] for r in runs["cold"])
    warm_requests = max(r[2] for r in runs["warm"])
    floor_out, cold_out, warm_out = outputs["floor"], outputs["cold"], outputs["warm"]
    listed = json.loads(cold_out)
    total = sum(len(t) for t in listed.values())
    assert int(floor_out) == total == args.repos * args.tags, (floor_out, total)
    assert json.loads(warm_out) == listed
    ratio = cold_s / floor_s
    mb = 1024 * 1024
    print(f"repositories × tags     {args.repos} × {args.tags} = {total} tags")
    print(f"concurrency             {concurrency} (loopback default)")
    print(f"rounds                  {args.rounds} (best wall time, worst RSS and request count)")
    rows = [
        ("(a) floor", floor_s, floor_rss, floor_requests),
        ("(b) imagebot tags cold", cold_s, cold_rss, cold_requests),
        ("(c) imagebot tags warm", warm_s, warm_rss, warm_requests),
    ]
    for label, seconds, rss, requests in rows:
        print(f"{label:<24}{seconds:6.2f} s  {rss / mb:6.1f} MB  {requests} requests")
    print(f"(b)/(a)                 {ratio:.2f}  (budget ≤ 1.30)")
    ok = ratio <= 1.3 and cold_rss <= 200 * mb and warm_rss <= 200 * mb
    ok = ok and warm_requests <= cold_requests
    print("budget                  " + ("met" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

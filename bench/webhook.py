"""Benchmark: registry push → commit on the remote, through `imagebot serve` and webhooks.

A real ``docker-registry`` whose notification endpoint (the README's snippet) points at
``imagebot serve`` (a subprocess), one environment watching ``--images`` repositories
(default 500, one Deployment file each, in a bare git remote), schedule far away. Then:

1. idle: the daemon's CPU time over ``--idle`` seconds with nothing to do, and its RSS;
2. ``--pushes`` times: push a new tag of one watched repository through the Distribution
   API and time from the start of the push until the remote's branch has moved.

Budget: p50 < 2 s, p95 < 3 s; idle CPU < 1 %; RSS < 150 MB with 500 images watched.

    python bench/webhook.py [--images 500] [--pushes 20] [--idle 10]
"""

# ruff: noqa: E402  (the path must be fixed before the first import that pulls in ``select``)
from __future__ import annotations

import sys

sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

from bench.registry_scan import write_tags
from tests.support.gitenv import make_remote
from tests.support.registry import free_port, push_image, run_registry
from tests.test_daemon_serve import SECRET, readme_notification

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {image}:1.0.0
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in bytes."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) * 1024, int(status["VmHWM"].split()[0]) * 1024


def branch_head(remote: Path) -> str:
    ref = remote / "refs" / "heads" / "main"
    if ref.exists():
        return ref.read_text().strip()
    return subprocess.run(
        ["git", "rev-parse", "main"], cwd=remote, capture_output=True, text=True, check=True
    ).stdout.strip()


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--log", type=Path, help="keep the daemon's log here")
    args = parser.parse_args()
    names = [f"bench/img{i:03d}" for i in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port = free_port()
        storage = work / "storage"
        write_tags(storage, names, ["1.0.0"])
        with run_registry(
            work / "r", storage=storage, notifications=[readme_notification(port)]
        ) as reg:
            files = {
                f"envs/bench/{n.split('/')[1]}.yaml": DEPLOYMENT.format(
                    name=n.split("/")[1], image=f"{reg.host}/{n}"
                ).encode()
                for n in names
            }
            remote = make_remote(work, files)
            policies = work / "policies"
            policies.mkdir()
            images = "".join(
                f"  - {{name: {n.split('/')[1]}, repository: {reg.host}/{n}}}\n" for n in names
            )
            (policies / "bench.yaml").write_text(
                f"environment: bench\nrepo: {{url: {remote}, path: envs/bench}}\n"
                f"schedule: {{every: 24h}}\nimages:\n{images}"
            )
            log = work / "daemon.log"
            env = {**os.environ, "IMAGEBOT_WEBHOOK_SECRET": SECRET, "IMAGEBOT_LOG_FORMAT": "json",
                   "PYTHONPATH": str(ROOT)}  # fmt: skip
            with log.open("wb") as out:
                daemon = subprocess.Popen(
                    [sys.executable, "-m", "imagebot", "serve", "--policies", str(policies),
                     "--cache-dir", str(work / "cache"), "--listen", f"127.0.0.1:{port}"],
                    stdout=out, stderr=subprocess.STDOUT, env=env,
                )  # fmt: skip
            try:

                def started() -> bool:
                    return b'"cycle_finished"' in log.read_bytes()

                wait(started, 300, "the startup cycle")
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
                print(f"startup cycle done; ready={ready['ready']}; {args.images} images watched")
                before = cpu_seconds(daemon.pid)
                time.sleep(args.idle)
                idle_cpu = (cpu_seconds(daemon.pid) - before) / args.idle
                idle_rss, _ = memory(daemon.pid)
                latencies = []
                for i in range(args.pushes):
                    name = names[i % len(names)]
                    head = branch_head(remote)
                    start = time.perf_counter()
                    push_image(reg, name, f"1.{1 + i // len(names)}.0")
                    wait(lambda h=head: branch_head(remote) != h, 60, f"the commit for {name}")
                    latencies.append(time.perf_counter() - start)
                rss, peak = memory(daemon.pid)
            finally:
                daemon.terminate()
                code = daemon.wait(timeout=60)
                if args.log:
                    args.log.write_bytes(log.read_bytes())
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    print(f"push -> commit over {len(latencies)} pushes: p50 {p50:.3f} s, p95 {p95:.3f} s,"
          f" min {latencies[0]:.3f} s, max {latencies[-1]:.3f} s")  # fmt: skip
    print(f"idle CPU over {args.idle:.0f} s: {idle_cpu * 100:.2f} %")
    print(f"RSS: idle {idle_rss / 2**20:.0f} MB, after the pushes {rss / 2**20:.0f} MB,"
          f" peak {peak / 2**20:.0f} MB")  # fmt: skip
    print(f"exit code after SIGTERM: {code}")
    ok = p50 < 2 and p95 < 3 and idle_cpu < 0.01 and peak < 150 * 2**20 and code == 0
    print(
        "budget (p50 < 2 s, p95 < 3 s, idle CPU < 1 %, RSS < 150 MB):", "met" if ok else "NOT met"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

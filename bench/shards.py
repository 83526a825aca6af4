"""Benchmark: work shared across replicas — 3 `imagebot serve --shards 6` processes, 600
images in 12 environments, one replica SIGKILLed.

A real ``docker-registry`` (its storage written directly: tags 1.0.0 and 1.1.0 of
``--images`` repositories), one bare git remote with 12 environments (``--images / 12``
Deployment files each), the local Lease API server the tests use. Then:

1. start 3 replicas; wait until the 6 shards are split 2/2/2 and every environment is on
   1.1.0 (each image's change committed once);
2. write tag 1.2.0 of every repository, SIGKILL one replica, and time from the kill until
   each of its environments' cycle starts on another replica (trigger ``startup``), and
   until their 1.2.0 commits land;
3. count commits per (environment, version) in the remote's history; peak RSS per replica.

Budget: every moved environment's cycle starts within 2 x the lease duration of the kill;
no environment published twice; per-replica peak RSS < 250 MB.

    python bench/shards.py [--images 600] [--lease 6]
"""

# ruff: noqa: E402  (the path must be fixed before the first import)
from __future__ import annotations

import sys

sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import signal
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.registry_scan import write_tags
from bench.webhook import memory
from imagebot.daemon.shards import shard_of
from tests.support.daemon import Daemon, run_daemon
from tests.support.gitenv import DEPLOYMENT, make_remote
from tests.support.kubeapi import run_kube_api, service_account
from tests.support.registry import run_registry
from tests.test_daemon_shards_replicas import owned, published

ENVIRONMENTS = [f"env{i:02d}" for i in range(12)]
SHARDS = 6


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--lease", type=float, default=6.0, help="lease duration, seconds")
    args = parser.parse_args()
    per_env = args.images // len(ENVIRONMENTS)
    names = {e: [f"bench/{e}-img{i:03d}" for i in range(per_env)] for e in ENVIRONMENTS}
    every = [n for ns in names.values() for n in ns]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        work = Path(tmp)
        storage = work / "storage"
        write_tags(storage, every, ["1.0.0", "1.1.0"])
        reg = stack.enter_context(run_registry(work / "r", storage=storage))
        files = {
            f"envs/{e}/{n.rsplit('/', 1)[1]}.yaml": DEPLOYMENT.format(image=f"{reg.host}/{n}")
            .replace("name: app\n", f"name: {n.rsplit('/', 1)[1]}\n", 1)
            .encode()
            for e, ns in names.items()
            for n in ns
        }
        remote = make_remote(work, files)
        policies = work / "policies"
        policies.mkdir()
        for e, ns in names.items():
            images = "".join(
                f"  - {{name: {n.rsplit('/', 1)[1]}, repository: {reg.host}/{n}}}\n" for n in ns
            )
            (policies / f"{e}.yaml").write_text(
                f"environment: {e}\nrepo: {{url: {remote}, path: envs/{e}}}\n"
                f"schedule: {{every: 24h}}\nimages:\n{images}"
            )
        api = stack.enter_context(run_kube_api(work / "api"))
        mount = service_account(work / "sa", api)
        host, port = api.url.removeprefix("https://").split(":")

        def start(name: str) -> Daemon:
            env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
                   "IMAGEBOT_SERVICE_ACCOUNT_DIR": str(mount), "HOSTNAME": name}  # fmt: skip
            cli = ["--policies", str(policies), "--cache-dir", str(work / f"cache-{name}")]
            cli += ["--shards", str(SHARDS), "--lease-duration", str(args.lease)]
            return stack.enter_context(run_daemon(work, *cli, env=env))

        started = time.monotonic()
        replicas = [start(n) for n in ("replica-a", "replica-b", "replica-c")]
        wait(
            lambda: sorted(len(owned(d)) for d in replicas) == [2, 2, 2],
            timeout=120,
            what="the shards split 2/2/2",
        )
        wait(
            lambda: len(published(remote)) == len(ENVIRONMENTS),
            timeout=600,
            what="every environment on 1.1.0",
        )
        print(f"start-up: 3 replicas, shards split, 1.1.0 everywhere in "
              f"{time.monotonic() - started:.1f} s")  # fmt: skip

        victim, survivors = replicas[0], replicas[1:]
        moved = [e for e in ENVIRONMENTS if shard_of(e, SHARDS) in owned(victim)]
        write_tags(storage, every, ["1.2.0"])
        peak_victim = memory(victim.proc.pid)[1]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed, killed_wall = time.monotonic(), datetime.now(UTC)

        def starts() -> dict[str, float]:
            out: dict[str, float] = {}
            for d in survivors:
                for e in d.named("cycle_started"):
                    at = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
                    if at >= killed_wall and e["trigger"] == "startup":
                        for env in e["environments"]:
                            out.setdefault(env, (at - killed_wall).total_seconds())
            return out

        wait(lambda: set(moved) <= set(starts()), timeout=10 * args.lease, what="takeover")
        wait(
            lambda: all(published(remote)[(e, "1.2.0")] for e in moved),
            timeout=600,
            what="the moved environments' 1.2.0 commits",
        )
        landed = time.monotonic() - killed
        counts = published(remote)
        peaks = [peak_victim] + [memory(d.proc.pid)[1] for d in survivors]
        took = starts()

    worst = max(took[e] for e in moved)
    print(f"images {len(every)} in {len(ENVIRONMENTS)} environments, {SHARDS} shards, "
          f"lease {args.lease:g} s")  # fmt: skip
    print(f"killed replica owned {len(moved)} environments: {', '.join(moved)}")
    for e in moved:
        print(f"  {e}: cycle started {took[e]:.2f} s after the kill")
    print(f"takeover: slowest cycle start {worst:.2f} s (budget {2 * args.lease:g} s); "
          f"1.2.0 committed for all moved environments {landed:.1f} s after the kill")  # fmt: skip
    duplicates = {k: v for k, v in counts.items() if v > 1}
    print(f"commits per (environment, version): {len(counts)} pairs, duplicates: {duplicates}")
    print("peak RSS per replica: " + ", ".join(f"{p / 2**20:.0f} MB" for p in peaks))
    ok = worst <= 2 * args.lease and not duplicates and max(peaks) < 250 * 2**20
    print("budget: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

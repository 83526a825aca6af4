"""Work shared across replicas: `imagebot serve --shards` processes against the local Lease
API server, a real registry and a real git remote."""

from __future__ import annotations

import re
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from imagebot.daemon.shards import shard_of
from tests.support.daemon import Daemon, run_daemon, wait_for
from tests.support.gitenv import DEPLOYMENT, git, make_remote
from tests.support.kubeapi import KubeAPI, run_kube_api, service_account
from tests.support.registry import Registry, push_image

ENVIRONMENTS = [f"env{i:02d}" for i in range(12)]
SHARDS = 6
LEASE = 6.0  # seconds: renewals every 0.8 s, a replica that cannot renew stops after 4 s


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with run_kube_api(tmp_path / "api") as server:
        yield server


def published(remote: Path) -> Counter[tuple[str, str]]:
    """(environment, version) of every imagebot commit in the remote's history."""
    log = git(
        "log", "--format=%(trailers:key=Imagebot-Environment,key=Imagebot-To)%x00", cwd=remote
    )
    out: Counter[tuple[str, str]] = Counter()
    for entry in log.split("\0"):
        env = re.search(r"Imagebot-Environment: (\S+)", entry)
        to = re.search(r"Imagebot-To: (\S+)", entry)
        if env and to:
            out[(env[1], to[1].rsplit(":", 1)[-1].split("@")[0])] += 1
    return out


def owned(daemon: Daemon) -> list[int]:
    return list(daemon.get("/readyz").json()["shards"]["owned"])


def test_replicas_split_shards_and_take_over_a_killed_one(
    tmp_path: Path, api: KubeAPI, registry: Registry
) -> None:
    """3 replicas split 6 shards of 12 environments, each environment is published by
    exactly one of them; after one is SIGKILLed the others own its shards (within 2 × the
    lease duration) and publish its environments, and no environment is ever published
    twice."""
    image = f"{registry.host}/acme/app"
    push_image(registry, "acme/app", "1.0.0")
    push_image(registry, "acme/app", "1.1.0")
    files = {f"envs/{e}/app.yaml": DEPLOYMENT.format(image=image).encode() for e in ENVIRONMENTS}
    remote = make_remote(tmp_path, files)
    policies = tmp_path / "policies"
    policies.mkdir()
    for env in ENVIRONMENTS:
        (policies / f"{env}.yaml").write_text(
            textwrap.dedent(
                f"""\
                environment: {env}
                repo: {{url: {remote}, path: envs/{env}}}
                schedule: {{every: 24h}}
                images:
                  - name: app
                    repository: {image}
                """
            )
        )
    mount = service_account(tmp_path / "sa", api)
    host, port = api.url.removeprefix("https://").split(":")

    def start(stack: ExitStack, name: str) -> Daemon:
        env = {
            "KUBERNETES_SERVICE_HOST": host,
            "KUBERNETES_SERVICE_PORT": port,
            "IMAGEBOT_SERVICE_ACCOUNT_DIR": str(mount),
            "HOSTNAME": name,
        }
        args = ["--policies", str(policies), "--cache-dir", str(tmp_path / f"cache-{name}")]
        args += ["--shards", str(SHARDS), "--lease-duration", str(LEASE)]
        return stack.enter_context(run_daemon(tmp_path, *args, env=env))

    with ExitStack() as stack:
        replicas = [start(stack, name) for name in ("replica-a", "replica-b", "replica-c")]

        def balanced() -> bool:
            shares = [owned(d) for d in replicas]
            return sorted(s for share in shares for s in share) == list(range(SHARDS)) and all(
                len(share) == 2 for share in shares
            )

        wait_for(balanced, timeout=60, what="6 shards split 2/2/2 between 3 replicas")
        for d in replicas:  # the status API says what /readyz says
            replica = d.get("/api/v1/status").json()["replica"]
            assert replica["shards"] == {"count": SHARDS, "owned": owned(d)}
            assert "imagebot_shards_owned 2.0" in d.get("/metrics").text
        wait_for(
            lambda: len(published(remote)) == len(ENVIRONMENTS),
            timeout=60,
            what="every environment updated to 1.1.0",
        )
        by_replica = {
            env: [d for d in replicas for e in d.named("cycle_finished") if env in e["commits"]]
            for env in ENVIRONMENTS
        }
        assert all(len(ds) == 1 for ds in by_replica.values()), by_replica

        victim, survivors = replicas[0], replicas[1:]
        lost = owned(victim)
        moved = [e for e in ENVIRONMENTS if shard_of(e, SHARDS) in lost]
        push_image(registry, "acme/app", "1.2.0")
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed = time.monotonic()
        wait_for(
            lambda: sorted(s for d in survivors for s in owned(d)) == list(range(SHARDS)),
            timeout=4 * LEASE,
            what="the killed replica's shards to be owned by the others",
        )
        took = time.monotonic() - killed
        print(f"shards taken over {took:.2f} s after SIGKILL (lease duration {LEASE} s)")
        assert took <= 2 * LEASE, took
        wait_for(
            lambda: all(published(remote)[(e, "1.2.0")] for e in moved),
            timeout=30,
            what="the moved environments' takeover cycles",
        )
        for d in survivors:  # the survivors still answer and own 3 shards each, eventually
            wait_for(lambda d=d: len(owned(d)) == 3, timeout=4 * LEASE, what="3 shards each")

    counts = published(remote)
    assert set(counts.values()) == {1}, counts  # no environment published twice
    assert {e for e, v in counts if v == "1.1.0"} == set(ENVIRONMENTS)
    assert {e for e, v in counts if v == "1.2.0"} == set(moved)

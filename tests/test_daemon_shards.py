"""Shard ownership (`imagebot serve --shards`) round by round, against the local TLS Lease
API server, on a monotonic clock the test moves."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from imagebot.daemon.leader import LeaseClient, LeaseSettings
from imagebot.daemon.scheduler import Dispatcher
from imagebot.daemon.shards import Shards, shard_of
from tests.support.kubeapi import KubeAPI, run_kube_api, service_account

NS = "imagebot"
ENVIRONMENTS = [f"env{i:02d}" for i in range(24)]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Replica:
    """One replica's Shards with a dispatcher that records what it was asked to run."""

    def __init__(self, api: KubeAPI, tmp_path: Path, who: str, clock: Clock) -> None:
        mount = service_account(tmp_path / f"sa-{who}", api, namespace=NS)
        host, port = api.url.removeprefix("https://").split(":")
        env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "HOSTNAME": who}
        settings = LeaseSettings.in_cluster(env, mount=mount)
        self.dispatcher = Dispatcher(self._never)
        self.cancelled: list[list[str]] = []
        self.shards = Shards(
            LeaseClient(settings),
            6,
            environments=lambda: ENVIRONMENTS,
            dispatcher=self.dispatcher,
            cancel=self.cancelled.append,
            monotonic=clock,
        )

    async def __aenter__(self) -> Replica:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shards.client.aclose()

    async def _never(self, batch: list[str], trigger: str) -> None:
        raise AssertionError("the dispatcher is not served in these tests")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with run_kube_api(tmp_path / "api") as server:
        yield server


def holders(api: KubeAPI) -> list[str | None]:
    return [api.holder(NS, f"imagebot-shard-{i}") for i in range(6)]


def test_the_shard_of_an_environment_is_the_same_in_every_process() -> None:
    """shard_of gives the same answer in another interpreter with another hash seed (it does
    not use Python's salted hash()), and 600 names reach every one of 6 shards."""
    names = [f"env-{i}" for i in range(600)]
    here = [shard_of(n, 6) for n in names]
    code = "from imagebot.daemon.shards import shard_of; print([shard_of(f'env-{i}', 6) for i in range(600)])"  # noqa: E501
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert there.stdout.strip() == str(here)
    assert set(here) == set(range(6))


def test_a_lone_replica_takes_every_shard_and_shares_them_when_another_joins(
    api: KubeAPI, tmp_path: Path
) -> None:
    """Alone, a replica owns all 6 shards and asks for their environments' cycles; when a
    second replica registers, the first gives shards back (first down to ⌈6/2⌉ + 1, then to
    the fair share while the other is starved) and the second takes them: 3 and 3."""
    clock = Clock()
    a, b = Replica(api, tmp_path, "pod-a", clock), Replica(api, tmp_path, "pod-b", clock)

    async def main() -> list[tuple[int, int]]:
        async with a, b:
            return await rounds()

    async def rounds() -> list[tuple[int, int]]:
        await a.shards.round()
        assert a.shards.owned == list(range(6))
        assert a.dispatcher.pending == set(ENVIRONMENTS)
        counts = []
        for _ in range(4):
            clock.t += 2
            await b.shards.round()
            await a.shards.round()
            counts.append((len(a.shards.owned), len(b.shards.owned)))
        return counts

    counts = anyio.run(main)
    assert counts[-1] == (3, 3), counts
    assert all(x + y <= 6 for x, y in counts)  # never two owners of one shard
    assert sorted(h or "" for h in holders(api)) == sorted(
        [a.shards.settings.identity] * 3 + [b.shards.settings.identity] * 3
    )
    given_back = [s for s in range(6) if s in b.shards.owned]
    for shard in given_back:  # a's pending work of a given-back shard was dropped
        assert not {e for e in ENVIRONMENTS if shard_of(e, 6) == shard} & a.dispatcher.pending


def test_a_shard_with_a_cycle_running_is_not_given_back(api: KubeAPI, tmp_path: Path) -> None:
    """A shard whose environment is mid-cycle stays with its owner (handing it over could
    let two replicas publish that environment at once); idle shards go instead."""
    clock = Clock()
    a, b = Replica(api, tmp_path, "pod-a", clock), Replica(api, tmp_path, "pod-b", clock)
    busy = [e for e in ENVIRONMENTS if shard_of(e, 6) in (3, 4, 5)]
    a.dispatcher._running.update(busy)  # as while those cycles run

    async def main() -> None:
        async with a, b:
            await rounds()

    async def rounds() -> None:
        await a.shards.round()
        for _ in range(4):
            clock.t += 2
            await b.shards.round()
            await a.shards.round()

    anyio.run(main)
    assert {3, 4, 5} <= set(a.shards.owned)
    assert set(b.shards.owned) <= {0, 1, 2} and b.shards.owned


def test_shards_that_cannot_be_renewed_stop_before_their_lease_can_pass(
    api: KubeAPI, tmp_path: Path
) -> None:
    """When the API server stops answering, a replica drops each shard — cancelling that
    shard's cycles — within renew_deadline of its last renewal, before lease_duration would
    let another replica take it."""
    clock = Clock()
    a = Replica(api, tmp_path, "pod-a", clock)
    s = a.shards.settings

    async def main() -> float:
        async with a:
            return await rounds()

    async def rounds() -> float:
        await a.shards.round()
        assert len(a.shards.owned) == 6
        renewed = clock.t
        api.fail = True
        while True:
            wait = await a.shards.round()
            if not a.shards.owned:
                break
            clock.t += wait
        return clock.t - renewed

    dropped_after = anyio.run(main)
    assert dropped_after <= s.renew_deadline < s.lease_duration
    cancelled = sorted(e for batch in a.cancelled for e in batch)
    assert cancelled == sorted(ENVIRONMENTS)

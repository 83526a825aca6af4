"""Leader election against a local TLS Kubernetes API implementing the Lease endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from imagebot.daemon.leader import Elector, LeaseClient, LeaseError, LeaseSettings
from tests.support.kubeapi import KubeAPI, run_kube_api, service_account

NS, NAME = "imagebot", "imagebot"


class Ticks:
    """A monotonic clock that moves only when told (or when the elector sleeps)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps = 0
        self.on_sleep: Callable[[int], None] = lambda n: None

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.on_sleep(self.sleeps)
        self.t += seconds
        await anyio.lowlevel.checkpoint()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with run_kube_api(tmp_path / "api") as server:
        yield server


def settings(api: KubeAPI, tmp_path: Path, who: str) -> LeaseSettings:
    mount = service_account(tmp_path / f"sa-{who}", api, namespace=NS)
    host, port = api.url.removeprefix("https://").split(":")
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "HOSTNAME": who}
    return LeaseSettings.in_cluster(env, name=NAME, mount=mount)


def elector(api: KubeAPI, tmp_path: Path, who: str, ticks: Ticks) -> Elector:
    return Elector(LeaseClient(settings(api, tmp_path, who)), monotonic=ticks, sleep=ticks.sleep)


def attempts(
    e: Elector,
    ticks: Ticks,
    times: list[float],
    *,
    before: dict[float, Callable[[], object]] | None = None,
) -> list[bool]:
    """try_acquire_or_renew at each monotonic time (one event loop for the client)."""

    async def main() -> list[bool]:
        out = []
        for t in times:
            ticks.t = t
            if before and t in before:
                before[t]()
            out.append(await e.try_acquire_or_renew())
        await e.client.aclose()
        return out

    return anyio.run(main)


def other_holds(api: KubeAPI, renew: str = "2000-01-01T00:00:00.000000Z") -> None:
    api.put_lease(
        NS,
        NAME,
        {
            "holderIdentity": "other",
            "leaseDurationSeconds": 15,
            "acquireTime": renew,
            "renewTime": renew,
            "leaseTransitions": 3,
        },
    )


def test_first_replica_creates_the_lease(api: KubeAPI, tmp_path: Path) -> None:
    """With no Lease, a replica creates it (404 then 201) naming itself the holder."""
    ticks = Ticks()
    e = elector(api, tmp_path, "pod-a", ticks)
    assert attempts(e, ticks, [0]) == [True]
    assert api.holder(NS, NAME) == e.settings.identity
    assert [(m, c) for m, _, c in api.requests] == [("GET", 404), ("POST", 201)]
    assert e.settings.identity.startswith("pod-a_")


def test_follower_waits_a_full_lease_duration_on_its_own_clock(
    api: KubeAPI, tmp_path: Path
) -> None:
    """A Lease renewed long ago by wall-clock time still counts as held until this replica
    has itself seen it unchanged for leaseDurationSeconds; then it takes over."""
    other_holds(api)
    ticks = Ticks()
    e = elector(api, tmp_path, "pod-b", ticks)
    assert attempts(e, ticks, [0, 14.9, 15.1]) == [False, False, True]
    lease = api.leases[(NS, NAME)]
    assert lease["spec"]["holderIdentity"] == e.settings.identity
    assert lease["spec"]["leaseTransitions"] == 4


def test_a_renewal_by_the_holder_restarts_the_wait(api: KubeAPI, tmp_path: Path) -> None:
    """When the holder renews, the follower's wait starts again from when it saw that."""
    other_holds(api)
    ticks = Ticks()
    e = elector(api, tmp_path, "pod-b", ticks)
    renewed = lambda: other_holds(api, renew="2000-01-01T00:00:10.000000Z")  # noqa: E731
    got = attempts(e, ticks, [0, 10, 20, 25.1], before={10: renewed})
    assert got == [False, False, False, True]


def test_stale_resource_version_loses_the_race(api: KubeAPI, tmp_path: Path) -> None:
    """If another replica writes the Lease between our read and our write, the API server
    answers 409 and we do not lead."""
    ticks = Ticks()
    e = elector(api, tmp_path, "pod-a", ticks)
    sneak = {"holderIdentity": "pod-c", "leaseDurationSeconds": 15, "renewTime": "x"}
    got = attempts(e, ticks, [0, 1], before={1: lambda: setattr(api, "sneak", sneak)})
    assert got == [True, False]
    assert api.requests[-1][0] == "PUT" and api.requests[-1][2] == 409
    assert api.holder(NS, NAME) == "pod-c"


def test_two_replicas_creating_at_once_elect_one(api: KubeAPI, tmp_path: Path) -> None:
    """A create that finds the Lease already created (409 AlreadyExists) does not lead."""
    a = elector(api, tmp_path, "pod-a", Ticks())
    b = elector(api, tmp_path, "pod-b", Ticks())

    async def main() -> tuple[bool, object]:
        first = await a.try_acquire_or_renew()
        body = {"metadata": {"name": NAME, "namespace": NS}, "spec": {"holderIdentity": "pod-b"}}
        created = await b.client.create(body)
        await a.client.aclose()
        await b.client.aclose()
        return first, created

    assert anyio.run(main) == (True, None)
    assert api.requests[-1][1:] == (f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", 409)
    assert api.holder(NS, NAME) == a.settings.identity


def test_leader_that_cannot_renew_stops_before_the_lease_can_pass(
    api: KubeAPI, tmp_path: Path
) -> None:
    """When renewals fail, the leader stops leading no later than renew_deadline after its
    last successful renewal began, which is before lease_duration lets another take over."""
    ticks = Ticks()
    e = elector(api, tmp_path, "pod-a", ticks)
    events: list[tuple[str, float]] = []
    renewed: list[float] = []

    def fail_after_two_renewals(sleeps: int) -> None:
        if sleeps == 3:  # acquired at t=0, renewed at t=2 and t=4
            renewed.append(ticks.t)
            api.fail = True

    ticks.on_sleep = fail_after_two_renewals

    async def main() -> None:
        async with anyio.create_task_group() as tg:

            def started() -> None:
                events.append(("started", ticks.t))

            def stopped() -> None:
                events.append(("stopped", ticks.t))
                tg.cancel_scope.cancel()

            tg.start_soon(lambda: e.run(started=started, stopped=stopped))
        await e.client.aclose()

    anyio.run(main)
    assert [name for name, _ in events] == ["started", "stopped"]
    stopped_at = events[1][1]
    assert renewed == [4.0]  # the last renewal that went through began at t=4
    assert stopped_at - 4.0 <= e.settings.renew_deadline < e.settings.lease_duration
    assert stopped_at - 4.0 >= e.settings.renew_deadline - e.settings.retry_period
    assert e.leading is False


def test_release_lets_another_replica_lead_at_once(api: KubeAPI, tmp_path: Path) -> None:
    """A leader shutting down empties holderIdentity, so a follower takes over without
    waiting out the lease duration."""
    a = elector(api, tmp_path, "pod-a", Ticks())
    b = elector(api, tmp_path, "pod-b", Ticks())

    async def main() -> list[object]:
        out: list[object] = [await a.try_acquire_or_renew()]
        a.leading = True
        out.append(await b.try_acquire_or_renew())
        await a.release()
        out.append(api.holder(NS, NAME))
        out.append(await b.try_acquire_or_renew())
        await a.client.aclose()
        await b.client.aclose()
        return out

    assert anyio.run(main) == [True, False, "", True]


def test_wrong_token_is_a_clear_error(api: KubeAPI, tmp_path: Path) -> None:
    """A token the API server refuses is reported with the HTTP status and the Lease."""
    s = settings(api, tmp_path, "pod-a")
    s.token_file.write_text("expired")
    e = Elector(LeaseClient(s))

    async def main() -> None:
        try:
            await e.try_acquire_or_renew()
        finally:
            await e.client.aclose()

    with pytest.raises(LeaseError, match=r"GET lease imagebot/imagebot: HTTP 401"):
        anyio.run(main)


def test_outside_a_pod_leader_election_says_why(tmp_path: Path) -> None:
    """Without KUBERNETES_SERVICE_HOST, --leader-elect fails naming the variable."""
    with pytest.raises(LeaseError, match="KUBERNETES_SERVICE_HOST"):
        LeaseSettings.in_cluster({}, mount=tmp_path)

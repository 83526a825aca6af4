"""The service in-process on a stepped clock: policy reload from a ConfigMap-style
directory, readiness detail, webhook limits, and a follower that refuses webhooks."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
import structlog
from structlog.testing import capture_logs

from imagebot.daemon.leader import LeaseSettings
from imagebot.daemon.service import ServeOptions, Service
from tests.support.clock import SteppedClock
from tests.support.gitenv import commits, make_remote
from tests.support.kubeapi import KubeAPI, run_kube_api, service_account
from tests.support.registry import Registry, push_image

SECRET = "hook-secret"


def policy(env: str, *, image: str = "nginx", every: str = "5m") -> str:
    return textwrap.dedent(
        f"""\
        environment: {env}
        repo: {{url: ./no-such-repo.git, path: envs/{env}}}
        schedule: {{every: {every}}}
        images:
          - name: web
            repository: {image}
        """
    )


def configmap(directory: Path, files: dict[str, str], version: str) -> None:
    """Write files the way kubelet updates a ConfigMap volume: a new timestamped directory,
    an atomic swap of the ``..data`` symlink, and one symlink per key through it."""
    data = directory / f"..{version}"
    data.mkdir(parents=True)
    for name, text in files.items():
        (data / name).write_text(text)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, directory / "..data")
    for name in files:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most 10 s) for work the service does in threads and subprocesses."""
    for _ in range(1000):
        if condition():
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: service.run(handle_signals=False))
        await eventually(lambda: service.bound is not None, "the service to listen")
        assert service.bound is not None
        host, port = service.bound
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=5) as client:
            yield client
        service.stop()


def options(tmp_path: Path, policies: Path, **kw: object) -> ServeOptions:
    return ServeOptions(
        policies=policies,
        cache_dir=tmp_path / "cache",
        listen="127.0.0.1:0",
        **kw,  # type: ignore[arg-type]
    )


def run(test: Callable[[], Awaitable[None]]) -> None:
    anyio.run(test)


def test_configmap_update_reloads_and_a_broken_file_keeps_its_last_good_version(
    tmp_path: Path,
) -> None:
    """After a ConfigMap swap, a changed file is picked up without a restart; a file that
    no longer loads keeps its environment on the last good version, reported in /readyz,
    /metrics and the logs; when every environment's last cycle failed, /readyz is 503."""
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev"), "prod.yaml": policy("prod")}, "v1")
    clock = SteppedClock()
    service = Service(options(tmp_path, policies, reload_interval=5), timer=clock)

    async def test() -> None:
        with capture_logs() as logs:
            await reload_scenario()
        problems = [e for e in logs if e["event"] == "policy_problem"]
        assert problems and "prod.yaml:3" in problems[0]["detail"]
        assert any(e["event"] == "policy_kept" and e["environment"] == "prod" for e in logs)

    async def reload_scenario() -> None:
        async with running(service) as http:
            await eventually(lambda: len(service.last) == 2, "the startup cycle")
            r = await http.get("/readyz")
            assert r.status_code == 503, "every environment's last cycle failed"
            assert r.json()["environments"]["dev"]["last_cycle"] == "failed"
            assert "no-such-repo.git" in r.json()["environments"]["dev"]["error"]

            broken = "environment: prod\nrepo: {url: ./x}\nimages: []\n"
            configmap(
                policies, {"dev.yaml": policy("dev", image="redis"), "prod.yaml": broken}, "v2"
            )
            clock.advance(5)
            await eventually(lambda: service.policies.state.kept == ("prod",), "the reload")
            await eventually(
                lambda: service.last["dev"].at == clock.now(), "the changed environment's cycle"
            )
            assert service.last["prod"].at < clock.now(), "an unchanged policy waits its turn"
            state = service.policies.state
            assert state.environments["dev"].policy.images[0].repository == "redis"
            assert state.environments["prod"].policy.images[0].repository == "nginx"
            detail = (await http.get("/readyz")).json()
            assert detail["kept_last_good"] == ["prod"]
            assert detail["policy_problems"][0].startswith(f"{policies}/prod.yaml:3: images")
            metrics = (await http.get("/metrics")).text
            assert "imagebot_policy_problems 1.0" in metrics
            assert "imagebot_environments 2.0" in metrics

    run(test)


def test_webhook_limits(tmp_path: Path) -> None:
    """Unknown sender 404, a streamed body over 1 MiB 413, a signed body that is not the
    sender's shape 400, a signed push of an unwatched repository 202 with no environment."""
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev")}, "v1")
    service = Service(options(tmp_path, policies, webhook_secret=SECRET), timer=SteppedClock())

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * 65536

    def signed(body: bytes) -> dict[str, str]:
        mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Imagebot-Signature": f"sha256={mac}"}

    async def test() -> None:
        async with running(service) as http:
            assert (await http.post("/webhooks/nexus", content=b"{}")).status_code == 404
            r = await http.post("/webhooks/generic", content=chunks())
            assert r.status_code == 413
            body = b'{"tag": "1"}'
            assert (
                await http.post("/webhooks/generic", content=body, headers=signed(body))
            ).status_code == 400
            body = b'{"repository": "ghcr.io/other/thing", "tag": "1"}'
            r = await http.post("/webhooks/generic", content=body, headers=signed(body))
            assert (r.status_code, r.json()["environments"]) == (202, [])
            body = b'{"repository": "nginx", "tag": "1.27.1"}'
            r = await http.post("/webhooks/generic", content=body, headers=signed(body))
            assert (r.status_code, r.json()["environments"]) == (202, ["dev"])
            assert (await http.get("/healthz")).text == "ok\n"

    run(test)


def test_without_a_secret_webhooks_are_off(tmp_path: Path) -> None:
    """With no webhook secret configured, every webhook is refused (404) and says why."""
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev")}, "v1")
    service = Service(options(tmp_path, policies), timer=SteppedClock())

    async def test() -> None:
        async with running(service) as http:
            r = await http.post("/webhooks/generic", content=b"{}")
            assert r.status_code == 404
            assert "IMAGEBOT_WEBHOOK_SECRET" in r.json()["error"]

    run(test)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with run_kube_api(tmp_path / "api") as server:
        yield server


def test_follower_answers_503_and_runs_no_cycle(tmp_path: Path, api: KubeAPI) -> None:
    """While another replica holds a fresh Lease, this one runs no cycle and answers a
    valid webhook 503 (so the sender retries, reaching the leader)."""
    api.put_lease(
        "imagebot",
        "imagebot",
        {
            "holderIdentity": "other",
            "leaseDurationSeconds": 15,
            "renewTime": "2000-01-01T00:00:00.000000Z",
        },
    )
    host, port = api.url.removeprefix("https://").split(":")
    mount = service_account(tmp_path / "sa", api)
    lease = LeaseSettings.in_cluster(
        {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, mount=mount
    )
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev")}, "v1")
    service = Service(
        options(tmp_path, policies, webhook_secret=SECRET, lease=lease), timer=SteppedClock()
    )
    body = b'{"repository": "nginx", "tag": "1.27.1"}'
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()

    async def test() -> None:
        async with running(service) as http:
            await eventually(lambda: any(m == "GET" for m, _, _ in api.requests), "a Lease read")
            r = await http.post(
                "/webhooks/generic", content=body, headers={"X-Imagebot-Signature": f"sha256={mac}"}
            )
            assert r.status_code == 503
            assert r.headers["retry-after"] == "2"
            ready = (await http.get("/readyz")).json()
            assert ready["leader"] is False
            assert "imagebot_leader 0.0" in (await http.get("/metrics")).text
        assert service.last == {}
        assert api.holder("imagebot", "imagebot") == "other"

    run(test)


def test_the_leader_runs_cycles(tmp_path: Path, api: KubeAPI) -> None:
    """With no Lease yet, the replica creates it, leads, and runs its start-up cycle."""
    host, port = api.url.removeprefix("https://").split(":")
    mount = service_account(tmp_path / "sa", api)
    lease = LeaseSettings.in_cluster(
        {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, mount=mount
    )
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev")}, "v1")
    service = Service(options(tmp_path, policies, lease=lease), timer=SteppedClock())

    async def test() -> None:
        async with running(service) as http:
            await eventually(lambda: "dev" in service.last, "the leader's first cycle")
            assert (await http.get("/readyz")).json()["leader"] is True
        assert api.holder("imagebot", "imagebot") == "", "released on shutdown"

    run(test)


def test_schedules_fire_on_the_injected_clock(tmp_path: Path) -> None:
    """Each environment runs when its own schedule says, by the service's clock: after 2
    minutes only `every: 2m` has run again; after 10, both have."""
    policies = tmp_path / "policies"
    configmap(
        policies, {"a.yaml": policy("a", every="2m"), "b.yaml": policy("b", every="10m")}, "v1"
    )
    clock = SteppedClock()
    service = Service(options(tmp_path, policies), timer=clock)

    async def test() -> None:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            async with running(service):
                await eventually(lambda: len(service.last) == 2, "the startup cycle")
                clock.advance(2 * 60 + 13)  # past 2m plus the most jitter (12 s)
                await eventually(lambda: service.last["a"].at == clock.now(), "a's schedule")
                assert service.last["b"].at < clock.now()
                clock.advance(8 * 60 + 60)
                await eventually(lambda: service.last["b"].at == clock.now(), "b's schedule")
        triggers = [e["trigger"] for e in logs if e["event"] == "cycle_started"]
        assert triggers[0] == "startup"
        assert set(triggers[1:]) == {"schedule"}

    run(test)


def test_a_leader_that_cannot_renew_stops_running_cycles(tmp_path: Path, api: KubeAPI) -> None:
    """When the API server stops answering, the leader steps down within its renew
    deadline: webhooks get 503 and /metrics shows it no longer leads."""
    host, port = api.url.removeprefix("https://").split(":")
    mount = service_account(tmp_path / "sa", api)
    lease = dataclasses.replace(
        LeaseSettings.in_cluster(
            {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}, mount=mount
        ),
        lease_duration=3,
        renew_deadline=1,
        retry_period=0.2,
    )
    policies = tmp_path / "policies"
    configmap(policies, {"dev.yaml": policy("dev")}, "v1")
    service = Service(
        options(tmp_path, policies, lease=lease, webhook_secret=SECRET), timer=SteppedClock()
    )
    body = b'{"repository": "nginx", "tag": "1.27.1"}'
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    signed = {"X-Imagebot-Signature": f"sha256={mac}"}

    async def test() -> None:
        async with running(service) as http:
            await eventually(lambda: service.leading, "leadership")
            r = await http.post("/webhooks/generic", content=body, headers=signed)
            assert r.status_code == 202
            api.fail = True
            await eventually(lambda: not service.leading, "stepping down")
            r = await http.post("/webhooks/generic", content=body, headers=signed)
            assert r.status_code == 503
            assert "imagebot_leader 0.0" in (await http.get("/metrics")).text

    run(test)


def test_the_daemon_keeps_the_decision_record_each_cycle_made(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """After a cycle the daemon holds each environment's decision record as the cycle made
    it — what ran, what it moved to and the commit — for its status to serve unrecomputed."""
    repository = f"acme/daemon-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(shared_registry, repository, tag)
    image = f"{shared_registry.host}/{repository}"
    manifest = f"kind: Deployment\nspec:\n  containers:\n    - image: {image}:1.0.0\n"
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": manifest.encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        policy("dev", image=image, every="24h").replace("./no-such-repo.git", str(remote))
    )
    service = Service(options(tmp_path, policies), timer=SteppedClock())

    async def test() -> None:
        async with running(service):
            await eventually(lambda: "dev" in service.last, "the startup cycle")
        last = service.last["dev"]
        assert last.ok, last.error
        (record,) = last.images
        assert (record.image, record.running.tag, record.choice) == ("web", "1.0.0", "1.1.0")
        assert record.commit == commits(remote)[0], "the commit the cycle pushed"

    run(test)

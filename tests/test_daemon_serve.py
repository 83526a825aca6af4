"""`imagebot serve` as a subprocess against a real registry that notifies it, and a real git
remote: webhooks land commits, bad signatures trigger nothing, SIGTERM never half-writes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import signal
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.daemon import Daemon, run_daemon, wait_for
from tests.support.faultproxy import Delay, Seen, run_fault_proxy
from tests.support.gitenv import DEPLOYMENT, commits, make_remote, show
from tests.support.registry import Htpasswd, Notify, Registry, free_port, push_image, run_registry

SECRET = "whsec-3f9a1c0e-never-log-me"
REG_USER, REG_PASSWORD = "pusher", "reg-pass-7d2b-never-log-me"
AUTH = httpx.BasicAuth(REG_USER, REG_PASSWORD)


def write_policies(directory: Path, remote: Path, image: str, *, host: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {{url: {remote}, path: envs/dev}}
            schedule: {{every: 24h}}
            images:
              - name: app
                repository: {image}
            """
        )
    )
    (directory / "registries.yaml").write_text(
        textwrap.dedent(
            f"""\
            registries:
              "{host}":
                credentials:
                  type: basic
                  username: {REG_USER}
                  password_env: TEST_REGISTRY_PASSWORD
            """
        )
    )


def readme_notification(port: int) -> Notify:
    """The registry notification endpoint exactly as the README shows it, pointed at the
    test's daemon and secret: the real registry must accept it and deliver through it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "notifications:" in b)
    endpoint = dict(yaml.safe_load(block)["notifications"]["endpoints"][0])
    url = endpoint.pop("url").replace("imagebot.example.com:8080", f"127.0.0.1:{port}")
    headers = {
        k: v[0].replace("CHANGE-ME-WEBHOOK-SECRET", SECRET)
        for k, v in endpoint.pop("headers").items()
    }
    assert headers == {"Authorization": f"Bearer {SECRET}"}
    return Notify(url, headers, extra=endpoint)


@dataclass
class Stack:
    registry: Registry
    remote: Path
    image: str
    daemon: Daemon


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    port = free_port()
    notify = readme_notification(port)
    users, storage, registry_port = (
        Htpasswd({REG_USER: REG_PASSWORD}),
        tmp_path / "blobs",
        free_port(),
    )
    # 1.0.0 is pushed before the registry notifies anyone: only the test's push is news.
    with run_registry(tmp_path / "r0", auth=users, storage=storage, port=registry_port) as first:
        push_image(first, "acme/app", "1.0.0", auth=AUTH)
    with run_registry(
        tmp_path / "r1", auth=users, storage=storage, port=registry_port, notifications=[notify]
    ) as registry:
        image = f"{registry.host}/acme/app"
        remote = make_remote(
            tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
        )
        policies = tmp_path / "policies"
        write_policies(policies, remote, image, host=registry.host)
        env = {"IMAGEBOT_WEBHOOK_SECRET": SECRET, "TEST_REGISTRY_PASSWORD": REG_PASSWORD}
        with run_daemon(
            tmp_path,
            "--policies", str(policies),
            "--cache-dir", str(tmp_path / "cache"),
            "--webhook-debounce", "0.2",
            env=env,
            port=port,
        ) as daemon:  # fmt: skip
            yield Stack(registry, remote, image, daemon)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if sample.split("{")[0] == name and all(got.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_registry_push_lands_commit_and_bad_signatures_trigger_nothing(stack: Stack) -> None:
    """A tag pushed to the registry reaches the remote through the registry's notification
    alone; unsigned or wrongly signed webhooks get 401 and start no cycle; /metrics moves;
    no secret appears anywhere in the daemon's output."""
    d = stack.daemon

    wait_for(lambda: bool(d.named("cycle_finished")), timeout=30, what="the startup cycle")
    baseline = len(d.named("cycle_started"))
    before = d.get("/metrics").text
    history = commits(stack.remote)

    body = json.dumps({"repository": stack.image, "tag": "9.9.9"}).encode()
    wrong = "sha256=" + hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    assert d.post("/webhooks/generic", body).status_code == 401
    assert d.post("/webhooks/generic", body, {"X-Imagebot-Signature": wrong}).status_code == 401
    envelope = json.dumps(
        {"events": [{"action": "push", "target": {"repository": "acme/app", "tag": "9.9.9"}}]}
    ).encode()
    bad_bearer = {"Authorization": "Bearer guess"}
    assert d.post("/webhooks/distribution", envelope, bad_bearer).status_code == 401
    assert d.post("/webhooks/generic", b"x" * (1024 * 1024 + 1)).status_code == 413

    push_image(stack.registry, "acme/app", "1.1.0", auth=AUTH)
    wait_for(lambda: len(commits(stack.remote)) == len(history) + 1, timeout=30, what="commit")
    assert (
        show(stack.remote, "envs/dev/app.yaml")
        == DEPLOYMENT.format(image=f"{stack.image}").replace("1.0.0", "1.1.0").encode()
    )
    wait_for(
        lambda: len(d.named("cycle_finished")) == baseline + 1,
        timeout=30,
        what="the webhook cycle to end",
    )
    # imagebot's own manifest reads reach it as pull notifications: answered, never a cycle.
    wait_for(
        lambda: any(e["pushes"] == 0 for e in d.named("webhook_received")),
        timeout=30,
        what="the registry's pull notifications",
    )
    after = d.get("/metrics").text
    code, _ = d.stop()
    assert code == 0

    started = d.named("cycle_started")
    assert [e["trigger"] for e in started[:1]] == ["startup"], started
    assert [e["trigger"] for e in started[baseline:]] == ["webhook"], started
    assert not [e for e in started if "schedule" in e["trigger"]]
    cycle_ids = {e["cycle_id"] for e in started}
    for event in d.events():
        if event.get("event") in ("tags_listed", "repo_read", "pushed", "change_planned"):
            assert event.get("cycle_id") in cycle_ids, event
            assert event.get("trigger") in ("startup", "webhook"), event
    # no signature, a wrong one, a body over the limit; a wrong bearer
    assert metric(after, "imagebot_webhooks_total", sender="generic", outcome="refused") == 3
    assert metric(after, "imagebot_webhooks_total", sender="distribution", outcome="refused") == 1
    # the one push is the one accepted notification; the pulls are ignored
    assert metric(after, "imagebot_webhooks_total", sender="distribution", outcome="accepted") == 1
    assert metric(after, "imagebot_webhooks_total", sender="distribution", outcome="ignored") >= 1

    webhook_ok = {"trigger": "webhook", "outcome": "ok"}
    cycles = metric(before, "imagebot_cycles_total", **webhook_ok)
    assert metric(after, "imagebot_cycles_total", **webhook_ok) == cycles + 1
    assert metric(after, "imagebot_cycle_duration_seconds_count") == baseline + 1
    assert metric(after, "imagebot_changes_published_total", environment="dev") == 1
    assert metric(after, "imagebot_changes_planned_total", environment="dev") == 1
    host = stack.registry.host
    ok_requests = ("imagebot_registry_requests_total", {"registry": host, "status": "200"})
    assert metric(after, ok_requests[0], **ok_requests[1]) > metric(
        before, ok_requests[0], **ok_requests[1]
    )
    assert metric(before, "imagebot_tags_seen", repository=stack.image) == 1
    assert metric(before, "imagebot_changes_published_total", environment="dev") == 0
    assert metric(after, "imagebot_tags_seen", repository=stack.image) == 2
    last = "imagebot_last_success_timestamp_seconds"
    assert metric(after, last, environment="dev") > metric(before, last, environment="dev") > 0

    output = d.log_text()
    basic = base64.b64encode(f"{REG_USER}:{REG_PASSWORD}".encode()).decode()
    for secret in (SECRET, REG_PASSWORD, basic):
        assert secret not in output


@contextmanager
def blocked_push(tmp_path: Path) -> Iterator[tuple[str, Path, Path, Path]]:
    """A registry holding acme/app 1.0.0 and 1.1.0, and a remote whose dev runs 1.0.0 and
    whose pre-receive hook, once a push arrives, touches ``started`` and waits until
    ``release`` exists: (image, remote, started, release)."""
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        for tag in ("1.0.0", "1.1.0"):
            push_image(registry, "acme/app", tag)
        remote = make_remote(
            tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
        )
        started, release = tmp_path / "push-started", tmp_path / "push-release"
        hook = remote / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\n"
            f"touch '{started}'\n"
            "i=0\n"
            f"while [ ! -e '{release}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\n"
            "exit 0\n"
        )
        hook.chmod(0o755)
        yield image, remote, started, release


def test_sigterm_during_push_finishes_the_push_and_exits_zero(tmp_path: Path) -> None:
    """SIGTERM while the push is in flight: the push completes (a whole commit on the
    remote), nothing else starts, and the process exits 0 within the grace period."""
    with blocked_push(tmp_path) as (image, remote, started, release):
        history = commits(remote)
        write_policies(tmp_path / "policies", remote, image, host=image.split("/")[0])
        with run_daemon(
            tmp_path,
            "--policies", str(tmp_path / "policies"),
            "--cache-dir", str(tmp_path / "cache"),
            "--grace", "20",
        ) as d:  # fmt: skip
            wait_for(started.exists, timeout=30, what="the push to reach the remote")
            d.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: bool(d.named("shutdown_requested")), timeout=10, what="SIGTERM seen")
            release.touch()
            code = d.proc.wait(timeout=20)
        assert code == 0, d.log_text()
        new = commits(remote)
        assert len(new) == len(history) + 1
        assert (
            show(remote, "envs/dev/app.yaml")
            == DEPLOYMENT.format(image=image).replace("1.0.0", "1.1.0").encode()
        )
        assert d.named("pushed") and d.named("stopped")[0]["clean"] is True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_while_scanning_abandons_the_cycle_before_any_write(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM (or SIGINT) while the registry is slow to answer: the cycle is abandoned,
    the remote is untouched, and the process exits 0 well within the grace period."""
    with run_registry(tmp_path / "registry") as registry:
        for tag in ("1.0.0", "1.1.0"):
            push_image(registry, "acme/app", tag)

        def slow_tags(seen: Seen) -> Delay | None:
            return (
                Delay(8) if seen.path.endswith("/tags/list") or "/tags/list?" in seen.path else None
            )

        with run_fault_proxy(registry.url, slow_tags) as proxy:
            host = proxy.url.removeprefix("http://")
            image = f"{host}/acme/app"
            remote = make_remote(
                tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
            )
            history = commits(remote)
            write_policies(tmp_path / "policies", remote, image, host=host)
            with run_daemon(
                tmp_path,
                "--policies", str(tmp_path / "policies"),
                "--cache-dir", str(tmp_path / "cache"),
                "--grace", "20",
            ) as d:  # fmt: skip
                wait_for(
                    lambda: any("/tags/list" in s.path for s in proxy.seen),
                    timeout=30,
                    what="the tag listing to start",
                )
                code, seconds = d.stop(sig)
            assert code == 0, d.log_text()
            assert seconds < 10  # well within the 20 s grace, even on a loaded runner
            assert commits(remote) == history
            assert d.named("cycle_abandoned")
            assert not d.named("pushed")


def test_a_push_outlasting_the_grace_period_exits_1_without_a_partial_commit(
    tmp_path: Path,
) -> None:
    """When a push is still blocked when the grace period ends, the process leaves at once
    with exit code 1; the remote then holds either the old commit or the whole new one."""
    with blocked_push(tmp_path) as (image, remote, started, release):
        before = DEPLOYMENT.format(image=image).encode()
        write_policies(tmp_path / "policies", remote, image, host=image.split("/")[0])
        with run_daemon(
            tmp_path,
            "--policies", str(tmp_path / "policies"),
            "--cache-dir", str(tmp_path / "cache"),
            "--grace", "1",
        ) as d:  # fmt: skip
            wait_for(started.exists, timeout=30, what="the push to reach the remote")
            code, seconds = d.stop()
        assert code == 1
        assert seconds < 8  # the 1 s grace, plus start-up of the exit on a loaded runner
        assert d.named("shutdown_grace_expired")
        release.touch()
        assert show(remote, "envs/dev/app.yaml") in (before, before.replace(b"1.0.0", b"1.1.0"))


def test_sigterm_during_a_pull_request_push_still_opens_the_pull_request(
    tmp_path: Path,
) -> None:
    """SIGTERM while the pull-request branch is being pushed: the push completes and its
    pull request is opened before the process exits 0 — never a branch without its PR."""
    from tests.support.forges import run_forge

    token = "forge-token-never-log-me"
    with (
        blocked_push(tmp_path) as (image, remote, started, release),
        run_forge("github", remote, token=token) as forge,
    ):
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "dev.yaml").write_text(
            textwrap.dedent(
                f"""\
                environment: dev
                repo: {{url: "file://{remote}", branch: main, path: envs/dev}}
                schedule: {{every: 24h}}
                publish:
                  mode: pull-request
                  forge: {{type: github, url: "{forge.url}", project: acme/environments,
                           token_env: FORGE_TOKEN}}
                images:
                  - name: app
                    repository: {image}
                """
            )
        )
        with run_daemon(
            tmp_path,
            "--policies", str(policies),
            "--cache-dir", str(tmp_path / "cache"),
            "--grace", "20",
            env={"FORGE_TOKEN": token},
        ) as d:  # fmt: skip
            wait_for(started.exists, timeout=30, what="the branch push to reach the remote")
            d.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: bool(d.named("shutdown_requested")), timeout=10, what="SIGTERM")
            assert forge.open_pulls() == []
            release.touch()
            code = d.proc.wait(timeout=20)
        assert code == 0, d.log_text()
        pulls = forge.open_pulls()
        assert [p.head for p in pulls] == ["imagebot/dev"]
        assert (
            show(remote, "envs/dev/app.yaml", ref="imagebot/dev")
            == DEPLOYMENT.format(image=image).replace("1.0.0", "1.1.0").encode()
        )
        assert token not in d.log_text()


def test_an_unreadable_cache_file_is_moved_aside_and_serve_keeps_running(tmp_path: Path) -> None:
    """`serve` over a cache file SQLite cannot read moves it aside with a warning naming it,
    starts a new one and runs its cycle, instead of exiting on every start."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "registry.sqlite").write_bytes(b"not a database, a disk-full leftover\n" * 200)
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        for tag in ("1.0.0", "1.1.0"):
            push_image(registry, "acme/app", tag)
        remote = make_remote(
            tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
        )
        write_policies(tmp_path / "policies", remote, image, host=registry.host)
        with run_daemon(
            tmp_path, "--policies", str(tmp_path / "policies"), "--cache-dir", str(cache)
        ) as d:
            wait_for(lambda: bool(d.named("pushed")), timeout=30, what="the first cycle's push")
            (warning,) = d.named("cache_unreadable")
            assert d.stop()[0] == 0, d.log_text()
    assert warning["path"] == str(cache / "registry.sqlite")
    assert (cache / "registry.sqlite.unreadable").read_bytes().startswith(b"not a database")
    assert b"1.1.0" in show(remote, "envs/dev/app.yaml")

"""Live configuration: registries.yaml, a registry password file and the webhook secret file
changed under a running `imagebot serve` are used by the next cycle or request; a broken
version keeps the last good one and /readyz says so."""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
from contextlib import ExitStack
from pathlib import Path

import httpx

from tests.support.daemon import Daemon, run_daemon, wait_for
from tests.support.gitenv import DEPLOYMENT, make_remote, show
from tests.support.registry import Htpasswd, free_port, push_image, run_registry

USER = "puller"


def webhook(d: Daemon, secret: str, image: str, tag: str) -> int:
    body = json.dumps({"repository": image, "tag": tag}).encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return d.post("/webhooks/generic", body, {"X-Imagebot-Signature": f"sha256={mac}"}).status_code


def test_registries_yaml_and_secret_files_reload_without_a_restart(tmp_path: Path) -> None:
    """Credentials added to registries.yaml, a rotated password file and a rotated webhook
    secret take effect on the next cycle or webhook; an emptied secret file and a broken
    registries.yaml keep their last good versions, and /readyz lists both until fixed."""
    storage, port = tmp_path / "blobs", free_port()
    config = tmp_path / "config"
    config.mkdir()
    password = config / "registry-password"
    password.write_text("first-pass\n")
    secret_file = config / "webhook-secret"
    secret_file.write_text("whsec-one\n")
    registries = tmp_path / "policies" / "registries.yaml"
    registries.parent.mkdir()
    registries.write_text("registries: {}\n")  # no credentials yet: the registry says 401

    r1 = run_registry(tmp_path / "r1", auth=Htpasswd({USER: "first-pass"}), storage=storage,
                      port=port)  # fmt: skip
    with ExitStack() as stack:
        registry = stack.enter_context(r1)
        auth = httpx.BasicAuth(USER, "first-pass")
        push_image(registry, "acme/app", "1.0.0", auth=auth)
        push_image(registry, "acme/app", "1.1.0", auth=auth)
        image = f"{registry.host}/acme/app"
        remote = make_remote(
            tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
        )
        (registries.parent / "dev.yaml").write_text(
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
        args = ["--policies", str(registries.parent), "--cache-dir", str(tmp_path / "cache")]
        args += ["--webhook-secret-file", str(secret_file), "--webhook-debounce", "0"]
        d = stack.enter_context(run_daemon(tmp_path, *args))
        wait_for(lambda: bool(d.named("cycle_finished")), timeout=30, what="startup cycle")
        assert d.named("cycle_finished")[-1]["ok"] is False  # no credentials

        registries.write_text(
            textwrap.dedent(
                f"""\
                registries:
                  "{registry.host}":
                    credentials: {{type: basic, username: {USER}, password_file: {password}}}
                """
            )
        )
        assert webhook(d, "whsec-one", image, "1.1.0") == 202
        wait_for(
            lambda: b":1.1.0" in show(remote, "envs/dev/app.yaml"),
            timeout=30,
            what="a cycle with the credentials registries.yaml now names",
        )

        # The webhook secret rotates: the old one is refused from the next request on.
        secret_file.write_text("whsec-two\n")
        assert webhook(d, "whsec-one", image, "0.0.1") == 401
        assert webhook(d, "whsec-two", image, "0.0.2") == 202

        # The registry's password rotates (same storage, same address), and so does the file.
        r1.__exit__(None, None, None)
        second = httpx.BasicAuth(USER, "second-pass")
        registry = stack.enter_context(
            run_registry(tmp_path / "r2", auth=Htpasswd({USER: "second-pass"}), storage=storage,
                         port=port)
        )  # fmt: skip
        push_image(registry, "acme/app", "1.2.0", auth=second)
        password.write_text("second-pass\n")
        assert webhook(d, "whsec-two", image, "1.2.0") == 202
        wait_for(
            lambda: b":1.2.0" in show(remote, "envs/dev/app.yaml"),
            timeout=30,
            what="a cycle with the rotated password",
        )

        # Broken versions: an emptied webhook secret file, a registries.yaml that is not YAML.
        secret_file.write_text("")
        registries.write_text("registries: [\n")
        push_image(registry, "acme/app", "1.3.0", auth=second)
        assert webhook(d, "whsec-two", image, "1.3.0") == 202
        wait_for(
            lambda: b":1.3.0" in show(remote, "envs/dev/app.yaml"),
            timeout=30,
            what="a cycle on the last good registries.yaml and password",
        )
        problems = d.get("/readyz").json()["config_problems"]
        assert any(str(secret_file) in p and "empty" in p for p in problems), problems
        assert any(str(registries) in p for p in problems), problems
        assert d.named("config_kept_last_good")

        secret_file.write_text("whsec-three\n")
        assert webhook(d, "whsec-two", image, "0.0.3") == 401
        assert webhook(d, "whsec-three", image, "0.0.4") == 202
        problems = d.get("/readyz").json()["config_problems"]
        assert not any(str(secret_file) in p for p in problems), problems
        assert "second-pass" not in d.log_text() and "first-pass" not in d.log_text()

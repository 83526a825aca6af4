"""Forge tokens and registry passwords: stripped on read, refused without being shown when a
file is not a token, sent only to the forge's own server, and masked in everything imagebot
prints — through the CLI, against a real registry, a real git remote and forge servers."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.conftest import BASIC_USERS
from tests.support.cli import run_cli
from tests.support.daemon import run_daemon, wait_for
from tests.support.forges import ForgeServer, run_forge
from tests.support.gitenv import make_remote
from tests.support.httpserver import serving
from tests.support.registry import Registry, push_image

TOKEN = "ghp_s3cretTokenValue4242"
SHADOW = "root:$6$saltsalt$hashhashhash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
APP = "image: {image}:1.0.0\n"


@dataclass
class World:
    policies: Path
    cache: Path
    forge: ForgeServer

    def apply(self, env: dict[str, str]) -> tuple[int, str]:
        result = run_cli(
            "apply", "--policies", str(self.policies), "--cache-dir", str(self.cache), env=env
        )
        return result.returncode, result.stdout + result.stderr


def write_policy(world_dir: Path, url: str, remote: Path, image: str, token: str) -> Path:
    policies = world_dir / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "staging.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: staging
            repo: {{url: "file://{remote}", branch: main, path: envs/staging}}
            publish:
              mode: pull-request
              forge: {{type: github, url: "{url}", project: acme/environments, {token}}}
            images:
              - name: app
                repository: {image}
            """
        )
    )
    return policies


@pytest.fixture
def world(tmp_path: Path, shared_registry: Registry) -> Iterator[World]:
    repository = f"acme/sec-{tmp_path.name[-12:].lower()}"
    image = f"{shared_registry.host}/{repository}"
    push_image(shared_registry, repository, "1.0.0")
    push_image(shared_registry, repository, "1.1.0")
    remote = make_remote(tmp_path, {"envs/staging/app.yaml": APP.format(image=image).encode()})
    with run_forge("github", remote, token=TOKEN) as forge:
        policies = write_policy(tmp_path, forge.url, remote, image, "token_env: FORGE_TOKEN")
        yield World(policies, tmp_path / "cache", forge)


def test_forge_token_with_a_trailing_newline_is_stripped(world: World) -> None:
    """A token read from the environment with a trailing newline (a Secret made with
    ``echo tok | base64``) is sent without it, and the pull request is opened."""
    code, output = world.apply({"FORGE_TOKEN": TOKEN + "\n"})
    assert code == 0, output
    assert [p.state for p in world.forge.pulls.values()] == ["open"]
    sent = {r.headers.get("authorization") for r in world.forge.requests}
    assert sent == {f"Bearer {TOKEN}"}
    assert TOKEN not in output


def test_token_file_that_is_not_a_token_is_refused_without_its_content(
    world: World, tmp_path: Path
) -> None:
    """``token_file`` naming a file of several lines (/etc/shadow, say) fails with the path and
    the rule broken; no line of the file is printed, and the forge is never called."""
    shadow = tmp_path / "shadow"
    shadow.write_text(SHADOW)
    policy = world.policies / "staging.yaml"
    policy.write_text(policy.read_text().replace("token_env: FORGE_TOKEN", f"token_file: {shadow}"))
    code, output = world.apply({})
    assert code == 1, output
    assert f"token file {shadow} holds several lines" in output
    assert "root:" not in output and "hashhash" not in output and "daemon:" not in output
    assert world.forge.requests == []


def test_binary_and_oversized_token_files_are_refused_by_rule(world: World, tmp_path: Path) -> None:
    """A binary token file and one longer than 16 KiB are each refused naming the file and
    the rule, reading no more of a big file than the limit."""
    policy = world.policies / "staging.yaml"
    text = policy.read_text()
    for name, content, rule in [
        ("binary", b"\x89PNG\r\n\x1a\n\xff\xfe", "is binary, not a token"),
        ("huge", b"a" * (64 * 1024 * 1024), "is longer than 16384 bytes"),
    ]:
        path = tmp_path / name
        path.write_bytes(content)
        policy.write_text(text.replace("token_env: FORGE_TOKEN", f"token_file: {path}"))
        code, output = world.apply({})
        assert code == 1 and f"token file {path} {rule}" in output, output
        assert "aaaaaaaa" not in output


def test_next_page_on_another_server_is_not_followed(world: World) -> None:
    """A forge whose ``Link: rel="next"`` points at another host:port gets an error naming
    that server; the other server never receives a request, let alone the token."""
    stolen: list[str] = []

    class Thief(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stolen.append(self.headers.get("authorization", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Thief, address="127.0.0.2") as thief:
        where = f"http://127.0.0.2:{thief.server_address[1]}"
        link = f'<{where}/steal?page=2>; rel="next"'
        world.forge.fail("GET", r"/pulls$", 200, [], headers={"Link": link}, times=10)
        code, output = world.apply({"FORGE_TOKEN": TOKEN})
    assert code == 1, output
    assert f"the next page is on another server ({where})" in output
    assert stolen == []


def test_plain_http_forge_url_needs_loopback_or_insecure(world: World) -> None:
    """``forge.url`` with plain http to a host that is not loopback is a policy error naming
    the host, unless ``insecure: true`` allows it."""
    policy = world.policies / "staging.yaml"
    text = policy.read_text()
    policy.write_text(text.replace(world.forge.url, "http://forge.example.com/api"))
    result = run_cli("check", "--policies", str(world.policies))
    assert result.returncode == 1
    assert "plain http to forge.example.com would send the token unencrypted" in result.stdout
    policy.write_text(
        text.replace(world.forge.url, "http://forge.example.com/api").replace(
            "token_env: FORGE_TOKEN", "token_env: FORGE_TOKEN, insecure: true"
        )
    )
    result = run_cli("check", "--policies", str(world.policies), env={"FORGE_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr


def test_forge_error_echoing_the_token_is_masked(world: World) -> None:
    """A forge error body that quotes the token is shown with ``***`` in its place, in the
    printed error and in every log line."""
    world.forge.fail("POST", r"/pulls$", 422, {"message": f"Validation failed for {TOKEN}"})
    code, output = world.apply({"FORGE_TOKEN": TOKEN})
    assert code == 1, output
    assert "Validation failed for ***" in output
    assert TOKEN not in output


def test_registry_password_env_and_file_are_stripped(
    basic_registry: Registry, tmp_path: Path
) -> None:
    """A registry password from an environment variable or a file, with surrounding
    whitespace, signs in as the password itself."""
    user, password = next(iter(BASIC_USERS.items()))
    push_image(basic_registry, "acme/app", "1.0", auth=httpx.BasicAuth(user, password))
    (tmp_path / "pass").write_text(f"  {password}\r\n")
    for credentials, env in [
        ("password_env: REG_PASS", {"REG_PASS": f"{password}\n"}),
        (f"password_file: {tmp_path / 'pass'}", {}),
    ]:
        registries = tmp_path / "registries.yaml"
        registries.write_text(
            f"registries:\n  {basic_registry.host}:\n"
            f"    credentials: {{type: basic, username: {user}, {credentials}}}\n"
        )
        result = run_cli(
            "tags", f"{basic_registry.host}/acme/app", "--registries", str(registries),
            "--cache", str(tmp_path / "c.db"), env=env,
        )  # fmt: skip
        assert (result.returncode, result.stdout) == (0, "1.0\n"), result.stderr


def test_registry_password_file_that_is_not_a_token_is_not_printed(
    basic_registry: Registry, tmp_path: Path
) -> None:
    """A registry ``password_file`` of several lines fails naming the file and the rule,
    without its content."""
    (tmp_path / "shadow").write_text(SHADOW)
    registries = tmp_path / "registries.yaml"
    registries.write_text(
        f"registries:\n  {basic_registry.host}:\n    credentials: {{type: basic,"
        f" username: alice, password_file: {tmp_path / 'shadow'}}}\n"
    )
    result = run_cli(
        "tags", f"{basic_registry.host}/acme/app", "--registries", str(registries),
        "--cache", str(tmp_path / "c.db"),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{tmp_path / 'shadow'} holds several lines" in result.stderr
    assert "hashhash" not in result.stdout + result.stderr


def test_duplicate_password_key_does_not_print_the_passwords(tmp_path: Path) -> None:
    """A registries.yaml that gives ``password`` twice is an error naming the file, line and
    key, without either password."""
    registries = tmp_path / "registries.yaml"
    registries.write_text(
        "registries:\n  ghcr.io:\n    credentials:\n      type: basic\n      username: u\n"
        "      password: firstHunter2\n      password: secondHunter2\n"
    )
    result = run_cli("tags", "ghcr.io/acme/app", "--registries", str(registries))
    assert result.returncode != 0
    assert f'{registries}:7: invalid YAML: found duplicate key "password"' in result.stderr
    assert "Hunter2" not in result.stdout + result.stderr


def test_readyz_and_daemon_logs_mask_an_echoed_token(world: World, tmp_path: Path) -> None:
    """``imagebot serve`` whose forge echoes the token in an error shows ``***`` in its place
    in the unauthenticated ``/readyz`` and in its log, never the token."""
    world.forge.fail("POST", r"/pulls$", 422, {"message": f"bad {TOKEN}"}, times=100)
    with run_daemon(
        tmp_path, "--policies", str(world.policies), "--cache-dir", str(world.cache),
        env={"FORGE_TOKEN": TOKEN},
    ) as daemon:  # fmt: skip
        wait_for(lambda: bool(daemon.named("cycle_finished")), timeout=60, what="a cycle")
        ready = daemon.get("/readyz")
        daemon.stop()
    assert "bad ***" in ready.json()["environments"]["staging"]["error"]
    assert TOKEN not in ready.text
    assert "bad ***" in daemon.log_text() and TOKEN not in daemon.log_text()

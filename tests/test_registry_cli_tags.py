"""``imagebot tags``: the full client from the command line, against real registries."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import BASIC_USERS
from tests.support.cli import run_cli
from tests.support.faultproxy import run_fault_proxy
from tests.support.registry import Registry, push_image


def test_json_maps_each_ref_as_given_to_its_tags(registry: Registry, tmp_path: Path) -> None:
    """JSON output is keyed by the reference exactly as typed, tag and all."""
    for tag in ("1.0.0", "1.1.0"):
        push_image(registry, "acme/app", tag)
    push_image(registry, "acme/worker", "2.0.0")
    push_image(registry, "acme/worker", "sha256-" + "a" * 64 + ".sig")
    app, worker = f"{registry.host}/acme/app:1.0.0", f"{registry.host}/acme/worker"
    result = run_cli("tags", app, worker, "--output", "json", "--cache", str(tmp_path / "c.db"))
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert list(listed) == [app, worker]
    assert sorted(listed[app]) == ["1.0.0", "1.1.0"]
    assert listed[worker] == ["2.0.0"]  # the cosign signature tag is not an image


def test_text_output_and_failures(registry: Registry, tmp_path: Path) -> None:
    """Text output lists each ref's tags; a missing repository is reported and exits 1."""
    push_image(registry, "acme/app", "1.0.0")
    ok, missing = f"{registry.host}/acme/app", f"{registry.host}/acme/missing"
    result = run_cli("tags", ok, missing, "--cache", str(tmp_path / "c.db"))
    assert result.returncode == 1
    assert result.stdout == f"{ok}\n  1.0.0\n"
    assert f"error: {missing}:" in result.stderr and "not found" in result.stderr


def test_registries_file_and_insecure_flag(registry: Registry, tmp_path: Path) -> None:
    """--registries supplies settings and --insecure-registry lets a non-loopback name use HTTP."""
    for i in range(5):
        push_image(registry, "acme/app", f"1.0.{i}")
    with run_fault_proxy(registry.url) as proxy:
        # "localtest" resolves nowhere; use the proxy's loopback host with a cap of 2 tags.
        config = tmp_path / "registries.yaml"
        config.write_text(f"registries:\n  {proxy.host}:\n    tag_cap: 2\n")
        result = run_cli(
            "tags",
            f"{proxy.host}/acme/app",
            "--registries",
            str(config),
            "--insecure-registry",
            proxy.host,
            "--cache",
            str(tmp_path / "c.db"),
        )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 2
    assert "tag_cap_reached" in result.stderr


def test_bad_registries_file_names_file_line_and_field(tmp_path: Path) -> None:
    """A typo in registries.yaml is reported as file:line: field and exits 1."""
    config = tmp_path / "registries.yaml"
    config.write_text("registries:\n  ghcr.io:\n    concurency: 4\n")
    result = run_cli("tags", "nginx", "--registries", str(config))
    assert result.returncode == 1
    assert f"{config}:3: registries.ghcr.io.concurency: unknown field" in result.stderr


def test_basic_auth_registry_via_docker_config(basic_registry: Registry, tmp_path: Path) -> None:
    """Credentials reach the client through the provider chain (Docker config.json)."""
    user, password = next(iter(BASIC_USERS.items()))
    push_image(basic_registry, "acme/app", "1.0", auth=httpx.BasicAuth(user, password))
    import base64

    docker = tmp_path / "docker"
    docker.mkdir()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (docker / "config.json").write_text(
        json.dumps({"auths": {basic_registry.host: {"auth": token}}})
    )
    result = run_cli(
        "tags",
        f"{basic_registry.host}/acme/app",
        "--cache",
        str(tmp_path / "c.db"),
        env={"DOCKER_CONFIG": str(docker)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1.0\n"


def test_tags_print_oldest_to_newest_by_version(registry: Registry, tmp_path: Path) -> None:
    """Distribution lists tags in the order it finds them on disk; `imagebot tags` prints
    versions in version order (1.0.9 before 1.0.10), other tags first."""
    pushed = ["1.0.10", "latest", "1.0.9", "1.0.2", "1.1.0-rc.1", "1.1.0"]
    for tag in pushed:
        push_image(registry, "acme/app", tag)
    ref = f"{registry.host}/acme/app"
    result = run_cli("tags", ref, "--cache", str(tmp_path / "c.db"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["latest", "1.0.2", "1.0.9", "1.0.10", "1.1.0-rc.1", "1.1.0"]


def test_refused_basic_credentials_name_user_and_where_the_password_comes_from(
    basic_registry: Registry, tmp_path: Path
) -> None:
    """A wrong password is reported once, naming the registry, the user, the variable the
    password came from and the registries.yaml line; `check` warns when that variable is
    not set, as it does for a forge token."""
    (user,) = BASIC_USERS
    config = tmp_path / "registries.yaml"
    config.write_text(
        f"registries:\n  {basic_registry.host}:\n"
        f"    credentials: {{type: basic, username: {user}, password_env: PRIV_PW}}\n"
    )
    result = run_cli(
        "tags", f"{basic_registry.host}/acme/app", "--registries", str(config),
        "--cache", str(tmp_path / "c.db"), env={"PRIV_PW": "not-the-password"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {basic_registry.host}/acme/app: tags: the registry refused the basic"
        f" credentials for user {user} (password from $PRIV_PW, {config}:3)"
    ]
    assert "not-the-password" not in result.stderr + result.stdout
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        "environment: dev\nrepo: {url: ./x}\nimages: [{name: a, repository: nginx}]\n"
    )
    checked = run_cli("check", "--policies", str(policies), "--registries", str(config))
    assert (
        f"warning: {config}:3: credentials.password_env: environment variable PRIV_PW is not"
        " set here"
    ) in checked.stderr, checked.stderr

"""Docker config.json credentials: auths, credHelpers and credsStore with real helper programs."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.spec import DockerConfigSource

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 1, tzinfo=UTC)

# A docker-credential helper speaking the docker-credential-helpers protocol: the action
# as argv[1], the server URL on stdin (no newline), JSON on stdout, "credentials not found"
# and exit 1 for unknown servers. It appends each server URL it is asked about to $HELPER_LOG.
HELPER_SCRIPT = """#!/bin/sh
if [ "$1" != get ]; then echo "unsupported action: $1" >&2; exit 2; fi
server=$(cat)
printf '%s\\n' "$server" >> "$HELPER_LOG"
case "$server" in
  helper.example.com)
    printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server" ;;
  https://index.docker.io/v1/)
    printf '{"ServerURL":"%s","Username":"hub-user","Secret":"hub-secret"}' "$server" ;;
  token.example.com)
    printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-abc"}' "$server" ;;
  broken.example.com)
    echo "keychain is locked" >&2; exit 3 ;;
  garbage.example.com)
    echo "this is not json" ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
"""


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / ".docker").mkdir(parents=True)
    return tmp_path / "home"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("test", "store"):
        helper = bin_dir / f"docker-credential-{name}"
        helper.write_text(HELPER_SCRIPT)
        helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HELPER_LOG": str(tmp_path / "helper.log")}


def _write_config(home: Path, config: object) -> None:
    (home / ".docker" / "config.json").write_text(json.dumps(config))


def _helper_calls(env: dict[str, str]) -> list[str]:
    log = Path(env["HELPER_LOG"])
    return log.read_text().splitlines() if log.exists() else []


async def _get(home: Path, env: dict[str, str], registry: str) -> Credentials | None:
    return await provider_for({}, env=env, home=home).get(registry, now=NOW)


async def test_auth_field_is_base64_user_colon_password(home: Path, env: dict[str, str]) -> None:
    """An ``auth`` entry decodes to the username and a password that may itself contain ':'."""
    _write_config(home, {"auths": {"registry.example.com": {"auth": _auth("bob", "pa:ss")}}})
    creds = await _get(home, env, "registry.example.com")
    assert creds == Credentials("bob", "pa:ss")


async def test_username_and_password_fields(home: Path, env: dict[str, str]) -> None:
    """Entries with separate ``username``/``password`` fields are honoured too."""
    _write_config(home, {"auths": {"quay.io": {"username": "robot", "password": "tok"}}})
    assert await _get(home, env, "quay.io") == Credentials("robot", "tok")


@pytest.mark.parametrize(
    "key",
    ["ghcr.io", "https://ghcr.io", "http://ghcr.io/", "https://ghcr.io/v2/", "GHCR.io"],
)
async def test_keys_match_with_or_without_scheme_and_path(
    home: Path, env: dict[str, str], key: str
) -> None:
    """A key written with a scheme, a path or another case still matches the bare host."""
    _write_config(home, {"auths": {key: {"auth": _auth("u", "p")}}})
    assert await _get(home, env, "ghcr.io") == Credentials("u", "p")


async def test_port_is_part_of_the_host(home: Path, env: dict[str, str]) -> None:
    """``localhost:5000`` credentials are not offered to ``localhost:5001``."""
    _write_config(home, {"auths": {"localhost:5000": {"auth": _auth("u", "p")}}})
    assert await _get(home, env, "localhost:5000") == Credentials("u", "p")
    assert await _get(home, env, "localhost:5001") is None


@pytest.mark.parametrize("registry", ["docker.io", "index.docker.io", "registry-1.docker.io"])
async def test_docker_hub_uses_the_index_v1_key(
    home: Path, env: dict[str, str], registry: str
) -> None:
    """Docker Hub's credentials live under ``https://index.docker.io/v1/``, for every alias."""
    _write_config(
        home, {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hubber", "secret")}}}
    )
    assert await _get(home, env, registry) == Credentials("hubber", "secret")


async def test_identity_token_is_marked_for_the_refresh_token_grant(
    home: Path, env: dict[str, str]
) -> None:
    """An ``identitytoken`` entry becomes a ``<token>`` credential carrying the token."""
    _write_config(
        home,
        {
            "auths": {
                "myacr.azurecr.io": {
                    "auth": _auth("00000000-0000-0000-0000-000000000000", ""),
                    "identitytoken": "eyJ-refresh",
                }
            }
        },
    )
    creds = await _get(home, env, "myacr.azurecr.io")
    assert creds is not None
    assert creds.is_identity_token
    assert creds.password == "eyJ-refresh"


async def test_empty_entry_means_anonymous(home: Path, env: dict[str, str]) -> None:
    """An ``auths`` entry with nothing in it (left by credsStore logins) gives no credentials."""
    _write_config(home, {"auths": {"ghcr.io": {}}})
    assert await _get(home, env, "ghcr.io") is None


async def test_cred_helper_runs_the_real_protocol(home: Path, env: dict[str, str]) -> None:
    """A credHelpers entry runs ``docker-credential-<name> get`` with the host on stdin."""
    _write_config(home, {"credHelpers": {"helper.example.com": "test"}})
    creds = await _get(home, env, "helper.example.com")
    assert creds == Credentials("helper-user", "helper-secret")
    assert _helper_calls(env) == ["helper.example.com"]


async def test_creds_store_gets_docker_hub_server_url(home: Path, env: dict[str, str]) -> None:
    """credsStore serves every registry, and Docker Hub is asked for by its v1 server URL."""
    _write_config(home, {"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "store"})
    assert await _get(home, env, "docker.io") == Credentials("hub-user", "hub-secret")
    assert _helper_calls(env) == ["https://index.docker.io/v1/"]


async def test_cred_helpers_win_over_creds_store(home: Path, env: dict[str, str]) -> None:
    """A per-registry credHelpers entry is preferred to the default credsStore."""
    (Path(env["PATH"].split(":")[0]) / "docker-credential-store").write_text(
        "#!/bin/sh\necho should-not-run >&2; exit 9\n"
    )
    _write_config(home, {"credHelpers": {"helper.example.com": "test"}, "credsStore": "store"})
    assert await _get(home, env, "helper.example.com") == Credentials(
        "helper-user", "helper-secret"
    )


async def test_helper_token_username_marks_identity_token(home: Path, env: dict[str, str]) -> None:
    """A helper answering ``Username: <token>`` returns an identity token."""
    _write_config(home, {"credsStore": "test"})
    creds = await _get(home, env, "token.example.com")
    assert creds is not None and creds.is_identity_token and creds.password == "refresh-abc"


async def test_helper_not_found_falls_back_to_inline_auth(home: Path, env: dict[str, str]) -> None:
    """When the store has no entry, an inline ``auth`` for the host is still used."""
    _write_config(
        home,
        {"auths": {"other.example.com": {"auth": _auth("file", "pw")}}, "credsStore": "test"},
    )
    assert await _get(home, env, "other.example.com") == Credentials("file", "pw")
    assert await _get(home, env, "nothing.example.com") is None
    assert _helper_calls(env) == ["other.example.com", "nothing.example.com"]


async def test_helper_failure_is_an_auth_error_naming_registry_and_helper(
    home: Path, env: dict[str, str]
) -> None:
    """A helper that fails for another reason than "not found" is reported, with its stderr."""
    _write_config(home, {"credsStore": "test"})
    with pytest.raises(AuthError) as caught:
        await _get(home, env, "broken.example.com")
    message = str(caught.value)
    assert message.startswith("broken.example.com: ")
    assert "docker-credential-test" in message and "keychain is locked" in message


async def test_helper_printing_non_json_is_an_auth_error(home: Path, env: dict[str, str]) -> None:
    """A helper whose stdout is not JSON gives an AuthError instead of a crash."""
    _write_config(home, {"credsStore": "test"})
    with pytest.raises(AuthError, match=r"garbage.example.com: .*did not print JSON"):
        await _get(home, env, "garbage.example.com")


async def test_missing_helper_is_an_auth_error(home: Path, env: dict[str, str]) -> None:
    """A configured helper that is not on the injected PATH is named in the error."""
    _write_config(home, {"credHelpers": {"ghcr.io": "absent"}})
    with pytest.raises(AuthError, match=r"ghcr.io: credential helper docker-credential-absent"):
        await _get(home, env, "ghcr.io")


async def test_docker_config_variable_moves_the_file(
    tmp_path: Path, home: Path, env: dict[str, str]
) -> None:
    """``$DOCKER_CONFIG`` names the directory holding config.json, as for the Docker CLI."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(
        json.dumps({"auths": {"ghcr.io": {"auth": _auth("moved", "pw")}}})
    )
    assert await _get(home, {**env, "DOCKER_CONFIG": str(elsewhere)}, "ghcr.io") == Credentials(
        "moved", "pw"
    )


async def test_config_json_from_an_environment_variable(home: Path, env: dict[str, str]) -> None:
    """A docker-config source with ``env`` reads the config JSON from that variable."""
    content = json.dumps({"auths": {"registry.gitlab.com": {"auth": _auth("ci", "job")}}})
    provider = provider_for(
        {"registry.gitlab.com": DockerConfigSource(type="docker-config", env="DOCKER_AUTH_CONFIG")},
        env={**env, "DOCKER_AUTH_CONFIG": content},
        home=home,
    )
    assert await provider.get("registry.gitlab.com", now=NOW) == Credentials("ci", "job")


async def test_explicit_path_with_tilde(home: Path, env: dict[str, str]) -> None:
    """A configured ``path`` starting with ``~`` is resolved against the injected home."""
    (home / "pull.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": _auth("a", "b")}}}))
    provider = provider_for(
        {"ghcr.io": DockerConfigSource(type="docker-config", path="~/pull.json")},
        env=env,
        home=home,
        docker_config=False,
    )
    assert await provider.get("ghcr.io", now=NOW) == Credentials("a", "b")


async def test_malformed_config_names_the_file(home: Path, env: dict[str, str]) -> None:
    """Invalid JSON in config.json is an AuthError naming the registry and the file."""
    (home / ".docker" / "config.json").write_text('{"auths": {')
    with pytest.raises(AuthError) as caught:
        await _get(home, env, "ghcr.io")
    assert str(caught.value).startswith("ghcr.io: ")
    assert "config.json: not valid JSON" in str(caught.value)


async def test_no_config_file_means_anonymous(tmp_path: Path, env: dict[str, str]) -> None:
    """Without any Docker config the provider answers None (anonymous access)."""
    assert await _get(tmp_path / "empty-home", env, "ghcr.io") is None

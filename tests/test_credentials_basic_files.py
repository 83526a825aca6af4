"""Basic credentials (inline, env, files) and mounted Kubernetes secret directories."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.spec import BasicSource, CredentialSource, SecretSource

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 1, 1, tzinfo=UTC)
SOURCE = TypeAdapter(CredentialSource)


async def _get(sources: dict[str, CredentialSource], registry: str, **kw: object) -> object:
    provider = provider_for(sources, docker_config=False, **kw)  # type: ignore[arg-type]
    return await provider.get(registry, now=NOW)


async def test_inline_basic(tmp_path: Path) -> None:
    """An inline username and password are returned for their registry only."""
    source = SOURCE.validate_python({"type": "basic", "username": "u", "password": "p"})
    sources: dict[str, CredentialSource] = {"ghcr.io": source}
    assert await _get(sources, "ghcr.io", env={}, home=tmp_path) == Credentials("u", "p")
    assert await _get(sources, "quay.io", env={}, home=tmp_path) is None


async def test_basic_from_environment_variables(tmp_path: Path) -> None:
    """``*_env`` fields read the injected environment, not the process's."""
    source = BasicSource(type="basic", username_env="REG_USER", password_env="REG_PASS")
    env = {"REG_USER": "ci-bot", "REG_PASS": "s3cret"}
    sources: dict[str, CredentialSource] = {"registry.example.com": source}
    creds = await _get(sources, "registry.example.com", env=env, home=tmp_path)
    assert creds == Credentials("ci-bot", "s3cret")


async def test_unset_environment_variable_is_an_error(tmp_path: Path) -> None:
    """A configured but unset variable is an AuthError naming registry and variable."""
    source = BasicSource(type="basic", username="u", password_env="REG_PASS")
    with pytest.raises(AuthError, match=r"^registry.example.com: basic password: .*REG_PASS"):
        await _get({"registry.example.com": source}, "registry.example.com", env={}, home=tmp_path)


async def test_basic_from_files_strips_one_trailing_newline(tmp_path: Path) -> None:
    """Password files written by ``echo`` lose their newline (surrounding whitespace goes,
    inner whitespace is kept)."""
    (tmp_path / "user").write_text("robot$acme\n")
    (tmp_path / "pass").write_text("two words \n")
    source = BasicSource(type="basic", username_file="~/user", password_file=str(tmp_path / "pass"))
    creds = await _get({"harbor.example.com": source}, "harbor.example.com", env={}, home=tmp_path)
    assert creds == Credentials("robot$acme", "two words")


def test_basic_needs_exactly_one_source_per_field() -> None:
    """A basic source with two password sources, or none, is rejected on load."""
    with pytest.raises(ValidationError, match="exactly one of password"):
        SOURCE.validate_python(
            {"type": "basic", "username": "u", "password": "p", "password_env": "X"}
        )
    with pytest.raises(ValidationError, match="exactly one of username"):
        SOURCE.validate_python({"type": "basic", "password": "p"})


async def test_secret_with_dockerconfigjson(tmp_path: Path) -> None:
    """A mounted kubernetes.io/dockerconfigjson secret is read through its .dockerconfigjson key."""
    secret = tmp_path / "regcred"
    secret.mkdir()
    auth = base64.b64encode(b"puller:pw").decode()
    (secret / ".dockerconfigjson").write_text(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}))
    sources: dict[str, CredentialSource] = {"*": SecretSource(type="secret", path=str(secret))}
    assert await _get(sources, "ghcr.io", env={}, home=tmp_path) == Credentials("puller", "pw")
    assert await _get(sources, "quay.io", env={}, home=tmp_path) is None


async def test_secret_with_legacy_dockercfg(tmp_path: Path) -> None:
    """A kubernetes.io/dockercfg secret has the auths map at the top level."""
    secret = tmp_path / "legacy"
    secret.mkdir()
    auth = base64.b64encode(b"old:school").decode()
    (secret / ".dockercfg").write_text(json.dumps({"https://quay.io": {"auth": auth, "email": ""}}))
    sources: dict[str, CredentialSource] = {
        "quay.io": SecretSource(type="secret", path=str(secret))
    }
    assert await _get(sources, "quay.io", env={}, home=tmp_path) == Credentials("old", "school")


async def test_secret_basic_auth_rotation_is_picked_up(tmp_path: Path) -> None:
    """A kubernetes.io/basic-auth secret's files are re-read once the cache entry is stale."""
    secret = tmp_path / "basic"
    secret.mkdir()
    (secret / "username").write_text("svc")
    (secret / "password").write_text("old")
    provider = provider_for(
        {"registry.example.com": SecretSource(type="secret", path=str(secret))},
        env={},
        home=tmp_path,
        docker_config=False,
    )
    assert await provider.get("registry.example.com", now=NOW) == Credentials("svc", "old")
    (secret / "password").write_text("new")
    assert await provider.get("registry.example.com", now=NOW) == Credentials("svc", "old")
    later = NOW.replace(minute=2)
    assert await provider.get("registry.example.com", now=later) == Credentials("svc", "new")


async def test_secret_directory_without_known_keys(tmp_path: Path) -> None:
    """A secret holding none of the known keys is an AuthError listing what was expected."""
    secret = tmp_path / "empty"
    secret.mkdir()
    sources: dict[str, CredentialSource] = {
        "ghcr.io": SecretSource(type="secret", path=str(secret))
    }
    with pytest.raises(AuthError, match=r"^ghcr.io: secret .*none of .dockerconfigjson"):
        await _get(sources, "ghcr.io", env={}, home=tmp_path)
    missing: dict[str, CredentialSource] = {
        "ghcr.io": SecretSource(type="secret", path=str(tmp_path / "nope"))
    }
    with pytest.raises(AuthError, match="no such directory"):
        await _get(missing, "ghcr.io", env={}, home=tmp_path)

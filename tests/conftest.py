"""Shared fixtures: real docker-registry instances on loopback with temp storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import Htpasswd, Registry, run_registry
from tests.support.tokenserver import TokenServer, run_token_registry

BASIC_USERS = {"alice": "wonderland"}
TOKEN_USERS = {"bob": "builder"}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """An anonymous registry of this test's own."""
    with run_registry(tmp_path) as reg:
        yield reg


@pytest.fixture(scope="session")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry shared by the session; tests use repository names of their own."""
    with run_registry(tmp_path_factory.mktemp("shared-registry")) as reg:
        yield reg


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry behind htpasswd Basic auth with the user in ``BASIC_USERS``."""
    with run_registry(tmp_path, auth=Htpasswd(BASIC_USERS)) as reg:
        yield reg


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[Registry, TokenServer]]:
    """A registry with ``auth: token`` and the token server it trusts (users in ``TOKEN_USERS``)."""
    with run_token_registry(tmp_path, users=TOKEN_USERS) as pair:
        yield pair

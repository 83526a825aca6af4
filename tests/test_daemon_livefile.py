"""Secret and configuration files read again when they change, keeping the last good version
through a broken one (imagebot.livefile, used by every secret file reader and serve's
registries.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagebot import livefile
from imagebot.errors import PolicyError
from imagebot.redact import SecretError
from imagebot.registry.settings import load_registries


def test_a_rotated_secret_is_read_and_a_broken_rotation_keeps_the_last_good_one(
    tmp_path: Path,
) -> None:
    """A changed token file is used at the next read; an emptied or deleted one keeps the
    last good token and is listed as a problem until a good version is written."""
    path = tmp_path / "token"
    path.write_text("token-one-abcdef\n")
    assert livefile.secret_file(path, what="forge token file") == "token-one-abcdef"
    path.write_text("token-two-abcdef\n")
    assert livefile.secret_file(path, what="forge token file") == "token-two-abcdef"

    path.write_text("")
    assert livefile.secret_file(path, what="forge token file") == "token-two-abcdef"
    assert any(str(path) in p and "empty" in p for p in livefile.problems())
    path.unlink()
    assert livefile.secret_file(path, what="forge token file") == "token-two-abcdef"

    path.write_text("token-three-abcdef\n")
    assert livefile.secret_file(path, what="forge token file") == "token-three-abcdef"
    assert not any(str(path) in p for p in livefile.problems())


def test_a_file_that_never_loaded_is_an_error(tmp_path: Path) -> None:
    """With no good version to keep, the reader's own error is raised, as without reloads."""
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SecretError, match="empty"):
        livefile.secret_file(empty, what="password file")
    with pytest.raises(OSError):
        livefile.secret_file(tmp_path / "missing", what="password file")


def test_registries_yaml_is_parsed_again_only_when_it_changed(tmp_path: Path) -> None:
    """The same bytes give the same settings object (no re-parse per cycle); new bytes give
    new settings; a broken file keeps the last good settings with its problem listed."""
    path = tmp_path / "registries.yaml"
    path.write_text("defaults: {scan_interval: 60}\n")
    first = livefile.read(path, load_registries, what="registries file")
    assert livefile.read(path, load_registries, what="registries file") is first
    path.write_text("defaults: {scan_interval: 600}\n")
    second = livefile.read(path, load_registries, what="registries file")
    assert second != first
    path.write_text("defaults: [\n")
    assert livefile.read(path, load_registries, what="registries file") is second
    assert any(f"{path}:2: invalid YAML" in p for p in livefile.problems())
    with pytest.raises(PolicyError):
        load_registries(path)  # the file itself is still refused where read directly

"""Hostile configuration files: alias bombs and oversized policy files get a fast, clear error."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest

from imagebot.core import yamldoc
from tests.support.cli import run_cli

POLICY = """\
environment: dev
repo: {url: /nowhere.git, branch: main, path: envs/dev}
images:
  - name: app
    repository: 127.0.0.1:5000/acme/app
"""


def alias_bomb(levels: int) -> str:
    """``x0`` lists ten strings, each next level lists the previous one ten times."""
    lines = ["bomb:", "  x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def check(policies: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # Without the limit a nine-level bomb expands to 10**10 nodes: the timeout is the failure.
    return run_cli("check", "--policies", str(policies), *extra, timeout=30)


def test_alias_bomb_in_a_policy_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A policy file whose aliases expand to billions of nodes fails fast with a clear error."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(POLICY + alias_bomb(9))
    result = check(policies)
    assert result.returncode == 1
    assert f"error: {policies / 'dev.yaml'}:1: too many aliases to expand safely" in result.stderr


def test_alias_bomb_in_registries_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    """registries.yaml gets the same alias limit as policy files."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(POLICY)
    registries = tmp_path / "registries.yaml"
    registries.write_text("defaults:\n  concurrency: 2\n" + alias_bomb(9))
    result = check(policies, "--registries", str(registries))
    assert result.returncode == 1
    assert f"error: {registries}:1: too many aliases to expand safely" in result.stderr


def test_anchors_within_the_limit_still_work(tmp_path: Path) -> None:
    """Ordinary anchors and aliases in a policy file still load."""
    policies = tmp_path / "policies"
    policies.mkdir()
    text = POLICY + "    range: &r '^1'\n"
    text += "  - name: other\n    repository: 127.0.0.1:5000/acme/other\n    range: *r\n"
    (policies / "dev.yaml").write_text(text)
    result = check(policies)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "environment dev, 2 image(s)" in result.stdout


def test_policy_files_share_the_alias_limit_of_environment_files() -> None:
    """One number bounds alias expansion in policy files and in environment files."""
    # The package re-exports the function ``locate`` under the module's name.
    rewrite_locate = importlib.import_module("imagebot.core.rewrite.locate")
    assert yamldoc.MAX_NODES == rewrite_locate.MAX_VISITS


@pytest.mark.parametrize("name", ["dev.yaml", "registries.yaml"])
def test_a_policy_file_over_one_mebibyte_is_refused(tmp_path: Path, name: str) -> None:
    """A policy file or registries.yaml over 1 MiB (one huge comment line) is refused by size."""
    policies = tmp_path / "policies"
    policies.mkdir()
    huge = "# " + "x" * (yamldoc.MAX_FILE_BYTES + 10) + "\n"
    if name == "dev.yaml":
        (policies / "dev.yaml").write_text(POLICY + huge)
    else:
        (policies / "dev.yaml").write_text(POLICY)
        (policies / "registries.yaml").write_text("defaults: {concurrency: 2}\n" + huge)
    result = check(policies)
    assert result.returncode == 1
    assert f"error: {policies / name}:1: " in result.stderr
    assert "may be at most 1024 KiB; this one is larger" in result.stderr


def test_a_policy_file_just_under_the_cap_loads(tmp_path: Path) -> None:
    """A file just under 1 MiB (a long comment) still loads: the cap is on size, not content."""
    policies = tmp_path / "policies"
    policies.mkdir()
    filler = "# " + "x" * (yamldoc.MAX_FILE_BYTES - len(POLICY) - 10) + "\n"
    (policies / "dev.yaml").write_text(POLICY + filler)
    result = check(policies)
    assert result.returncode == 0, result.stdout + result.stderr

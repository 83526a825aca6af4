"""Hostile files and broken state, through the CLI against a real registry and a real git
remote: an oversized environment file is skipped while the others are planned, a full disk
is a one-line error the next run recovers from, and what a killed git left in the clone
(locks, temporary index files) is cleared under imagebot's own clone lock."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagebot.git.workspace import repo_cache_dir
from tests.support.cli import run_cli
from tests.support.gitenv import make_remote, push_files, show
from tests.support.registry import Registry, push_image


@dataclass
class Env:
    remote: Path
    image: str
    policies: Path
    cache: Path

    def run(self, command: str, cache: Path | None = None) -> tuple[int, str]:
        result = run_cli(
            command, "--policies", str(self.policies), "--cache-dir", str(cache or self.cache)
        )
        return result.returncode, result.stdout + result.stderr

    def clone(self, cache: Path | None = None) -> Path:
        return repo_cache_dir((cache or self.cache) / "repos", f"file://{self.remote}")


@pytest.fixture
def env(tmp_path: Path, shared_registry: Registry) -> Env:
    repository = f"acme/files-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    image = f"{shared_registry.host}/{repository}"
    push_image(shared_registry, repository, "1.0.0")
    push_image(shared_registry, repository, "1.1.0")
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": f"image: {image}:1.0.0\n".encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {{url: "file://{remote}", branch: main, path: envs/dev}}
            images:
              - name: app
                repository: {image}
            """
        )
    )
    return Env(remote, image, policies, tmp_path / "cache")


def test_oversized_environment_file_is_skipped_and_the_others_planned(env: Env) -> None:
    """A 5 MiB environment file (one image line and comments) is over the 4 MiB default:
    it is skipped with a problem naming it and the limit, and the other file is planned;
    raising ``repo.max_file_bytes`` plans both."""
    big = f"image: {env.image}:1.0.0\n# ".encode() + b"x" * (5 * 1024 * 1024) + b"\n"
    push_files(env.remote, {"envs/dev/big.yaml": big}, message="a big file")
    code, output = env.run("plan")
    assert code == 1, output
    limit = f"dev: envs/dev/big.yaml: {len(big)} bytes, over repo.max_file_bytes (4194304)"
    assert limit in output
    assert "envs/dev/app.yaml" in output and ":1.1.0" in output
    assert "+++ b/envs/dev/big.yaml" not in output
    policy = env.policies / "dev.yaml"
    policy.write_text(
        policy.read_text().replace("path: envs/dev", "path: envs/dev, max_file_bytes: 8388608")
    )
    code, output = env.run("plan")
    assert code == 0, output
    assert "+++ b/envs/dev/big.yaml" in output and "max_file_bytes" not in output


def test_stale_git_locks_and_temporary_indexes_are_cleared(env: Env) -> None:
    """Lock files a killed git left in the clone (``index.lock``, the remote-tracking ref's
    lock) older than the git timeout, and GitPython's orphaned temporary index files, are
    removed with a warning, and ``apply`` lands its commit; the clone's config is 0600."""
    code, output = env.run("plan")
    clone = env.clone()
    leftovers = [clone / "index.lock", clone / "refs/remotes/origin/main.lock"]
    leftovers += [clone / "indexa1b2c3", clone / "tmpq9w8e7"]
    old = time.time() - 3600
    for path in leftovers:
        path.write_text("")
        os.utime(path, (old, old))
    code, output = env.run("apply")
    assert code == 0, output
    assert b":1.1.0" in show(env.remote, "envs/dev/app.yaml")
    assert [p for p in leftovers if p.exists()] == []
    assert output.count('"event": "stale_git_file_removed"') == len(leftovers)
    assert stat.S_IMODE((clone / "config").stat().st_mode) == 0o600


def test_fresh_git_lock_is_a_clear_error_not_a_traceback(env: Env) -> None:
    """A git lock younger than the git timeout may belong to a git someone runs by hand: it
    is left alone, and the run fails with an error line naming the repository and the lock."""
    env.run("plan")
    lock = env.clone() / "refs/remotes/origin/main.lock"
    lock.write_text("")
    code, output = env.run("apply")
    assert code == 1
    assert "Traceback" not in output
    assert lock.exists()
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"dev: file://{env.remote}: " in errors[0], errors
    assert "main.lock': File exists" in errors[0]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (mounting needs root; the test is skipped without it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_disk_full_is_one_error_line_and_the_next_run_recovers(env: Env, small_disk: Path) -> None:
    """With the cache directory's disk full, ``apply`` exits 1 with one error line naming the
    directory and no traceback, the remote is untouched; with space again, it lands."""
    cache = small_disk / "cache"
    assert env.run("plan", cache=cache)[0] == 0
    filler = small_disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as f:
        while True:
            f.write(b"\0" * 4096)
    before = show(env.remote, "envs/dev/app.yaml")
    code, output = env.run("apply", cache=cache)
    assert code == 1
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left" in errors[0] and str(cache) in errors[0], errors
    assert show(env.remote, "envs/dev/app.yaml") == before
    filler.unlink()
    code, output = env.run("apply", cache=cache)
    assert code == 0, output
    assert b":1.1.0" in show(env.remote, "envs/dev/app.yaml")

"""`imagebot check` on promotion: the environment graph and promote fields, at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.cli import run_cli


def write(directory: Path, env: str, promote: str = "", images: str = "app") -> Path:
    path = directory / f"{env}.yaml"
    entries = "".join(
        f"  - name: {name}\n    repository: ghcr.io/acme/{name}\n" for name in images.split()
    )
    path.write_text(
        f"environment: {env}\nrepo: {{url: ../env.git, path: envs/{env}}}\n"
        + (f"promote:\n{textwrap.indent(promote, '  ')}" if promote else "")
        + f"images:\n{entries}"
    )
    return path


def check(directory: Path) -> tuple[int, str]:
    result = run_cli("check", "--policies", str(directory))
    return result.returncode, result.stdout + result.stderr


def test_cycle_in_the_graph_is_reported_at_promote_from(tmp_path: Path) -> None:
    """staging from prod and prod from staging: both files are named at their `from:` line."""
    staging = write(tmp_path, "staging", "from: prod\n")
    prod = write(tmp_path, "prod", "soak: 1h\nfrom: staging\n")
    write(tmp_path, "dev")
    code, out = check(tmp_path)
    assert code == 1
    assert (
        f"error: {staging}:4: promote.from: environments promote from each other in a cycle" in out
    )
    assert f"error: {prod}:5: promote.from: environments promote from each other" in out
    assert "environment dev" in out, "the rest of the graph is still fine"


def test_unknown_upstream_and_missing_image_entry(tmp_path: Path) -> None:
    """An unknown `from` and an image with no upstream entry of the same name are errors."""
    write(tmp_path, "dev", images="app")
    staging = write(tmp_path, "staging", "from: dev\n", images="app worker")
    prod = write(tmp_path, "prod", "from: stagign\n")
    code, out = check(tmp_path)
    assert code == 1
    assert (
        f"error: {prod}:4: promote.from: unknown environment 'stagign' (known: dev, prod, staging)"
        in out
    )
    assert (
        f"error: {staging}:8: images[1]: image 'worker' has no entry of the same name in"
        f" upstream environment 'dev'"
    ) in out


def test_bad_window_zone_and_soak_are_reported_at_their_line(tmp_path: Path) -> None:
    """A window with an unknown zone, a freeze with bad syntax and a bad soak each name
    their file:line and list item."""
    write(tmp_path, "dev")
    staging = write(
        tmp_path,
        "staging",
        "from: dev\nsoak: 1 hour\nwindows:\n  - Mon-Thu 09:00-16:00 Europe/Berln\n"
        "freeze: [Xmas 10:00]\n",
    )
    code, out = check(tmp_path)
    assert code == 1
    assert f"error: {staging}:5: promote.soak: invalid duration '1 hour'" in out
    assert (
        f"error: {staging}:7: promote.windows[0]: 'Mon-Thu 09:00-16:00 Europe/Berln':"
        " unknown time zone" in out
    )
    assert f"error: {staging}:8: promote.freeze[0]: 'Xmas 10:00': " in out


def test_checks_are_accepted_with_a_warning_when_upstream_has_no_forge(
    tmp_path: Path,
) -> None:
    """`checks:` validates; check warns when the upstream names no forge to read statuses
    from, and is quiet once it does."""
    write(tmp_path, "dev")
    staging = write(tmp_path, "staging", "from: dev\nchecks: [deploy/dev]\n")
    code, out = check(tmp_path)
    assert code == 0, out
    assert (
        f"warning: {staging}:5: promote.checks: dev names no forge (publish.forge in"
        f" {tmp_path / 'dev.yaml'}), so commit statuses cannot be read"
    ) in out
    dev = tmp_path / "dev.yaml"
    dev.write_text(
        dev.read_text()
        + "publish: {mode: commit, forge: {type: github, project: acme/env, token_env: T}}\n"
    )
    code, out = check(tmp_path)
    assert code == 0, out
    assert "warning" not in out


def test_a_broken_upstream_is_named_as_broken_not_unknown(tmp_path: Path) -> None:
    """When dev.yaml does not load, prod's `from: dev` says dev's file has errors instead of
    calling dev unknown, and `-e dev` does not claim dev does not exist."""
    dev = tmp_path / "dev.yaml"
    dev.write_text(write(tmp_path, "dev").read_text() + "    prerelease: maybe\n")
    prod = write(tmp_path, "prod", "from: dev\n")
    code, out = check(tmp_path)
    assert code == 1
    assert (
        f"error: {prod}:4: promote.from: environment 'dev' did not load ({dev} has errors)" in out
    )
    assert "unknown environment" not in out
    result = run_cli("check", "--policies", str(tmp_path), "-e", "dev")
    assert "no environment named" not in result.stderr, result.stderr

"""``imagebot migrate`` as a user runs it: dry run, writing, refusing to overwrite, warnings."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.cli import run_cli

FLUX = textwrap.dedent(
    """\
    apiVersion: image.toolkit.fluxcd.io/v1beta2
    kind: ImageRepository
    metadata: {name: app, namespace: apps}
    spec: {image: ghcr.io/acme/app}
    ---
    apiVersion: image.toolkit.fluxcd.io/v1beta2
    kind: ImagePolicy
    metadata: {name: app, namespace: apps}
    spec:
      imageRepositoryRef: {name: app}
      policy: {semver: {range: ">=1.0.0-0"}}
    ---
    apiVersion: image.toolkit.fluxcd.io/v1beta2
    kind: ImageUpdateAutomation
    metadata: {name: apps, namespace: apps}
    spec:
      sourceRef: {kind: GitRepository, name: fleet}
      git: {checkout: {ref: {branch: main}}, push: {branch: auto}}
      update: {path: ./apps, strategy: Setters}
    ---
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {name: fleet, namespace: apps}
    spec: {url: "https://git.example.com/fleet.git"}
    """
)


def _flux_dir(tmp_path: Path) -> Path:
    source = tmp_path / "flux"
    (source / "apps").mkdir(parents=True)
    (source / "apps" / "automation.yaml").write_text(FLUX)
    return source


def test_dry_run_prints_policies_and_writes_nothing(tmp_path: Path) -> None:
    """``--dry-run`` prints each policy file under a header and creates no file."""
    out = tmp_path / "policies"
    result = run_cli(
        "migrate", "--from", "flux", str(_flux_dir(tmp_path)), "--out-dir", str(out), "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# --- {out / 'apps.yaml'}\n")
    assert "environment: apps\n" in result.stdout
    assert "marker_namespace: apps\n" in result.stdout
    assert "range_style: masterminds\n" in result.stdout  # read as Flux reads the range
    assert "pushed to auto" in result.stdout  # the push branch has no equivalent: a comment
    assert not out.exists()


def test_writes_policies_that_check_accepts_and_never_overwrites(tmp_path: Path) -> None:
    """The files written pass ``imagebot check``; a second run refuses to overwrite them."""
    out = tmp_path / "policies"
    result = run_cli("migrate", "--from", "flux", str(_flux_dir(tmp_path)), "--out-dir", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out / 'apps.yaml'}: environment apps\n"
    assert run_cli("check", "--policies", str(out)).returncode == 0
    written = (out / "apps.yaml").read_text()
    result = run_cli("migrate", "--from", "flux", str(tmp_path / "flux"), "--out-dir", str(out))
    assert result.returncode == 1
    assert f"{out / 'apps.yaml'}: already exists; not overwritten" in result.stderr
    assert (out / "apps.yaml").read_text() == written


def test_force_overwrites_and_o_is_not_an_output_directory(tmp_path: Path) -> None:
    """``--force`` replaces an existing policy file; ``-o`` (the output format elsewhere)
    is refused as a usage error instead of naming a directory."""
    out = tmp_path / "policies"
    out.mkdir()
    (out / "apps.yaml").write_text("# mine\n")
    source = str(_flux_dir(tmp_path))
    result = run_cli("migrate", "--from", "flux", source, "--out-dir", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert "environment: apps\n" in (out / "apps.yaml").read_text()
    result = run_cli("migrate", "--from", "flux", source, "-o", str(out))
    assert result.returncode == 2
    assert "unrecognized arguments: -o" in result.stderr


def test_bad_file_is_named_and_the_rest_converted(tmp_path: Path) -> None:
    """A file that is not YAML is named with its line in a warning; the others convert."""
    source = _flux_dir(tmp_path)
    (source / "broken.yaml").write_text("a: [unclosed\n")
    result = run_cli("migrate", "--from", "flux", str(source), "--dry-run")
    assert result.returncode == 0
    assert "warning: broken.yaml:2: not YAML, skipped" in result.stderr
    assert "environment: apps" in result.stdout


def test_policy_without_automation_is_reported(tmp_path: Path) -> None:
    """An ImagePolicy no automation in the directory uses is named in a warning."""
    source = _flux_dir(tmp_path)
    (source / "other.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\n"
        "metadata: {name: lonely, namespace: other}\nspec: {imageRepositoryRef: {name: x}}\n"
    )
    result = run_cli("migrate", "--from", "flux", str(source), "--dry-run")
    assert result.returncode == 0
    assert "ImagePolicy other/lonely belongs to no ImageUpdateAutomation" in result.stderr


def test_nothing_to_convert_and_missing_directory(tmp_path: Path) -> None:
    """A directory without the tool's configuration exits 1; a missing one exits 2."""
    (tmp_path / "empty").mkdir()
    result = run_cli("migrate", "--from", "argocd-image-updater", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert "nothing to convert" in result.stderr
    result = run_cli("migrate", "--from", "renovate", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "not a directory" in result.stderr


def test_one_existing_file_does_not_stop_the_other_environments(tmp_path: Path) -> None:
    """With two automations and one policy file already there, the other is still written
    and the run exits 1 naming the file it kept."""
    source = _flux_dir(tmp_path)
    second = FLUX.replace("namespace: apps", "namespace: web").replace("name: apps", "name: web")
    (source / "web.yaml").write_text(second)
    out = tmp_path / "policies"
    out.mkdir()
    (out / "apps.yaml").write_text("# mine\n")
    result = run_cli("migrate", "--from", "flux", str(source), "--out-dir", str(out))
    assert result.returncode == 1
    assert f"{out / 'apps.yaml'}: already exists" in result.stderr
    assert (out / "apps.yaml").read_text() == "# mine\n"
    assert "environment: web\n" in (out / "web.yaml").read_text()

"""``imagebot set-image`` on real files, run as a subprocess."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import run_cli

DEPLOYMENT = (
    "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
    "      - name: web\n        image: ghcr.io/acme/web:1.0.0 # app\n"
)
VALUES = 'image:\n  registry: ghcr.io\n  repository: acme/web\n  tag: "1.0.0"\n  digest: ""\n'
KUSTOMIZATION = "resources: [deploy.yaml]\nimages:\n- name: ghcr.io/acme/web\n  newTag: 1.0.0\n"
COMPOSE = 'services:\n  web:\n    image: ghcr.io/acme/web:1.0.0\n    ports: ["80:80"]\n'
DIGEST = "sha256:" + "c0" * 32


def test_set_image_edits_four_file_kinds_and_prints_each_change(tmp_path: Path) -> None:
    """One command updates a Deployment, a split values block, a kustomization and a compose
    file, printing file:line, field and old → new for each."""
    files = {
        "deploy.yaml": DEPLOYMENT,
        "values.yaml": VALUES,
        "kustomization.yaml": KUSTOMIZATION,
        "compose.yaml": COMPOSE,
    }
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode())
    result = run_cli(
        "set-image",
        *files,
        "--image",
        "ghcr.io/acme/web",
        "--tag",
        "1.1.0",
        "--digest",
        DIGEST,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    new = f"ghcr.io/acme/web:1.1.0@{DIGEST}"
    assert result.stdout.splitlines() == [
        f"deploy.yaml:8: spec.template.spec.containers[0].image: ghcr.io/acme/web:1.0.0 -> {new}",
        f"values.yaml:4: image: ghcr.io/acme/web:1.0.0 -> {new}",
        f"kustomization.yaml:4: images[0]: ghcr.io/acme/web:1.0.0 -> {new}",
        f"compose.yaml:3: services.web.image: ghcr.io/acme/web:1.0.0 -> {new}",
    ]
    read = {name: (tmp_path / name).read_bytes().decode() for name in files}
    assert read["deploy.yaml"] == DEPLOYMENT.replace("web:1.0.0", f"web:1.1.0@{DIGEST}")
    assert read["values.yaml"] == VALUES.replace('"1.0.0"', '"1.1.0"').replace(
        'digest: ""', f'digest: "{DIGEST}"'
    )
    assert read["kustomization.yaml"] == KUSTOMIZATION.replace(
        "newTag: 1.0.0", f"newTag: 1.1.0\n  digest: {DIGEST}"
    )
    assert read["compose.yaml"] == COMPOSE.replace("web:1.0.0", f"web:1.1.0@{DIGEST}")


def test_set_image_short_name_on_docker_hub(tmp_path: Path) -> None:
    """The full Docker Hub name finds ``nginx`` in the file and keeps it short."""
    path = tmp_path / "compose.yml"
    path.write_bytes(b"services:\r\n  web:\r\n    image: nginx:1.25\r\n")
    result = run_cli("set-image", str(path), "--image", "docker.io/library/nginx", "--tag", "1.27")
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == b"services:\r\n  web:\r\n    image: nginx:1.27\r\n"


def test_set_image_refuses_unsafe_edit_and_touches_no_file(tmp_path: Path) -> None:
    """When one file cannot be edited safely, the command fails, writes no file at all and
    prints no change line (stdout stays empty)."""
    good = tmp_path / "deploy.yaml"
    good.write_bytes(DEPLOYMENT.encode())
    bad = tmp_path / "values.yaml"
    shared = "x: &v '1.0.0'\nimage:\n  repository: ghcr.io/acme/web\n  tag: *v\n"
    bad.write_bytes(shared.encode())
    result = run_cli(
        "set-image", str(good), str(bad), "--image", "ghcr.io/acme/web", "--tag", "1.1.0"
    )
    assert result.returncode == 1
    assert f"{bad}:1:" in result.stderr and "alias" in result.stderr
    assert "no file was changed" in result.stderr
    assert result.stdout == ""
    assert good.read_bytes() == DEPLOYMENT.encode()
    assert bad.read_bytes() == shared.encode()


def test_set_image_without_any_reference_fails(tmp_path: Path) -> None:
    """Naming an image no file references is an error, not a silent success."""
    path = tmp_path / "deploy.yaml"
    path.write_bytes(DEPLOYMENT.encode())
    result = run_cli("set-image", str(path), "--image", "redis", "--tag", "7")
    assert result.returncode == 1
    assert "no reference to redis" in result.stderr
    assert path.read_bytes() == DEPLOYMENT.encode()


def test_set_image_rejects_invalid_tag(tmp_path: Path) -> None:
    """A tag Docker would reject is refused before any file is written."""
    path = tmp_path / "deploy.yaml"
    path.write_bytes(DEPLOYMENT.encode())
    result = run_cli("set-image", str(path), "--image", "ghcr.io/acme/web", "--tag", "bad tag")
    assert result.returncode == 1
    assert "invalid tag" in result.stderr
    assert path.read_bytes() == DEPLOYMENT.encode()

"""End to end: one pattern entry, or environment defaults, governing 50 images.

A real registry holds 50 repositories ``acme/svc00``…``acme/svc49`` (tags 1.0.0, 1.1.0,
2.0.0); a real git remote holds one Deployment per service at 1.0.0.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.gitenv import commits, make_remote, show, trailers
from tests.support.registry import Registry, push_image, run_registry

SERVICES = [f"svc{n:02d}" for n in range(50)]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: {image}:1.0.0  # pinned by hand once
"""


@dataclass
class Fleet:
    registry: Registry
    digests: dict[tuple[str, str], str]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with run_registry(tmp_path_factory.mktemp("registry")) as registry:
        digests = {
            (name, tag): push_image(registry, f"acme/{name}", tag)
            for name in SERVICES
            for tag in ("1.0.0", "1.1.0", "2.0.0")
        }
        yield Fleet(registry, digests)


def environment(fleet: Fleet, root: Path, policy: str) -> tuple[Path, Path]:
    """A remote with one Deployment per service, and a policies dir holding ``policy``."""
    host = fleet.registry.host
    files = {
        f"envs/dev/{name}.yaml": DEPLOYMENT.format(name=name, image=f"{host}/acme/{name}").encode()
        for name in SERVICES
    }
    remote = make_remote(root, files)
    policies = root / "policies"
    policies.mkdir()
    header = f"environment: dev\nrepo: {{url: {remote}, path: envs/dev}}\n"
    (policies / "dev.yaml").write_text(header + textwrap.dedent(policy).format(host=host))
    return remote, policies


def cli(policies: Path, cache: Path, *args: str) -> tuple[int, str]:
    result = run_cli(*args, "--policies", str(policies), "--cache-dir", str(cache))
    return result.returncode, result.stdout + result.stderr


def test_one_pattern_entry_governs_fifty_images(fleet: Fleet, tmp_path: Path) -> None:
    """A `repository: host/acme/*` entry moves all 50 images within its range in one commit,
    an exact entry overrides it for one service, and a rerun has nothing to do."""
    remote, policies = environment(
        fleet,
        tmp_path,
        """\
        images:
          - name: acme
            repository: "{host}/acme/*"
            range: "^1"
          - name: special
            repository: {host}/acme/svc07
            range: "^2"
        """,
    )
    cache = tmp_path / "cache"
    before = {name: show(remote, f"envs/dev/{name}.yaml") for name in SERVICES}
    code, out = cli(policies, cache, "apply")
    assert code == 0, out
    assert len(commits(remote)) == 2
    for name in SERVICES:
        new = "2.0.0" if name == "svc07" else "1.1.0"
        expected = before[name].replace(b":1.0.0  #", f":{new}  #".encode())
        assert show(remote, f"envs/dev/{name}.yaml") == expected, name
    recorded = trailers(remote)
    images = [value for key, value in recorded if key == "Imagebot-Image"]
    assert images == [f"{fleet.registry.host}/acme/{name}" for name in SERVICES]
    assert ("Imagebot-Digest", fleet.digests[("svc03", "1.1.0")]) in recorded

    code, out = cli(policies, cache, "apply")
    assert code == 0, out
    assert f"dev: {len(SERVICES)} images up to date" in out.splitlines()
    assert len(commits(remote)) == 2


def test_plan_explain_names_the_entry_governing_each_reference(
    fleet: Fleet, tmp_path: Path
) -> None:
    """`plan --explain` says which entry governs every reference, as text and as JSON."""
    host = fleet.registry.host
    _, policies = environment(
        fleet,
        tmp_path,
        """\
        images:
          - {{name: acme, repository: "{host}/acme/*", range: "^1"}}
          - {{name: special, repository: "{host}/acme/svc07", range: "^2"}}
        """,
    )
    code, out = cli(policies, tmp_path / "cache", "plan", "--explain")
    assert code == 0, out
    assert f"dev: {host}/acme/svc03 governed by images[acme] (pattern {host}/acme/*):\n" in out
    assert "    envs/dev/svc03.yaml:10 spec.template.spec.containers[0].image\n" in out
    assert f"dev: {host}/acme/svc07 governed by images[special]:\n" in out
    assert out.count(" governed by ") == 50
    result = run_cli(
        "plan", "--explain", "--output", "json",
        "--policies", str(policies), "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    (env,) = json.loads(result.stdout)["environments"]
    governed = {g["repository"]: g for g in env["governed"]}
    assert governed[f"{host}/acme/svc12"]["entry"] == f"images[acme] (pattern {host}/acme/*)"
    assert governed[f"{host}/acme/svc12"]["targets"] == [
        {
            "file": "envs/dev/svc12.yaml",
            "line": 10,
            "field": "spec.template.spec.containers[0].image",
        }
    ]
    assert len(env["changes"]) == 50


def test_environment_defaults_govern_every_referenced_image(fleet: Fleet, tmp_path: Path) -> None:
    """With only `defaults` (range ^1, digest pinned), each of the 50 images moves to 1.1.0
    pinned to its own digest, and the next plan has nothing to do."""
    remote, policies = environment(
        fleet,
        tmp_path,
        """\
        defaults:
          range: "^1"
          digest: pin
        """,
    )
    code, out = cli(policies, tmp_path / "cache", "apply")
    assert code == 0, out
    host = fleet.registry.host
    for name in SERVICES:
        digest = fleet.digests[(name, "1.1.0")]
        text = show(remote, f"envs/dev/{name}.yaml").decode()
        assert f"image: {host}/acme/{name}:1.1.0@{digest}  # pinned by hand once\n" in text
    assert len(commits(remote)) == 2
    code, out = cli(policies, tmp_path / "cache", "plan")
    assert f"dev: {len(SERVICES)} images up to date" in out.splitlines(), out

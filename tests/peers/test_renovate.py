"""Renovate's docker versioning spec and docker docs, run through imagebot.

Sources: renovatebot/renovate ``lib/modules/versioning/docker/index.spec.ts`` (commit
16b33cdebd3397fd5eb8d37a944efdf37010035b; ``isCompatible``, ``isStable`` tables) and
``docs/usage/docker.md`` (commit 00a491b120c206e550c61a52bce81f1a8818627f; "Version
compatibility", "Version Upgrading"). The hyphenless prerelease (``3.7.0b1``) and precision
cases come from the same spec at commit c2dd4f856f068eeda4c10afc3752c35fe1f6cab1
(``isStable``, ``isCompatible``, ``sorts unstable``) and its ``docs/usage/docker.md``
("Preservation of Version Precision").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagebot.migrate import CONVERTERS
from tests.peers.support import FIXTURES, choose, converted, migrate_and_plan
from tests.support.gitenv import git, make_remote
from tests.support.registry import push_image, run_registry


def _policy(config: dict[str, object], image: str = "python:3.7.0") -> str:
    files = {
        "renovate.json": json.dumps(config),
        "compose.yaml": f"services:\n  app:\n    image: {image}\n",
    }
    (policy,) = converted("renovate", files, "https://git.example.com/acme/env.git")
    return policy


#: isCompatible(version, range) cases: Renovate's answer, and whether it proposes the move
#: (compatible and newer than the running ``range`` tag)
COMPATIBLE = [
    ("3.7.0", "3.7.0", True, False),
    ("3.7-alpine", "3.7.0", False, False),
    ("3.8.0-alpine", "3.7.0", False, False),
    ("3.8.2", "3.7.0", True, True),
    ("3.7.0", "3.7.0-alpine", False, False),
    ("3.7-alpine", "3.7.0-alpine", False, False),
    ("3.8.0-alpine", "3.7.0-alpine", True, True),
    ("3.8.2", "3.7.0-alpine", False, False),
]


@pytest.mark.parametrize(("version", "running", "compatible", "proposed"), COMPATIBLE)
def test_docker_versioning_compatibility(
    version: str, running: str, compatible: bool, proposed: bool
) -> None:
    """isCompatible: running ``running``, a converted policy (default docker versioning)
    moves to ``version`` exactly when Renovate would propose it (compatible and newer)."""
    policy = _policy({"extends": ["docker:enableMajor"]}, image=f"python:{running}")
    assert choose(policy, [running, version], current=running) == (version if proposed else running)


@pytest.mark.parametrize(
    ("version", "stable"),
    [("3.7.0", True), ("3.8.0-alpine", True), ("3.8.2", True), ("3.8.3-SNAPSHOT", False)],
)
def test_docker_versioning_stability(version: str, stable: bool) -> None:
    """isStable: with ignoreUnstable (Renovate's default) an unstable tag is never chosen,
    a stable one is (running the same suffix)."""
    suffix = "-alpine" if version.endswith("-alpine") else ""
    policy = _policy({}, image=f"python:3.7.0{suffix}")
    assert (choose(policy, [version], current=f"3.7.0{suffix}") == version) is stable


def test_no_major_updates_by_default() -> None:
    """docs/usage/docker.md "Version Upgrading": without docker:enableMajor, minor and patch
    updates only; with it, majors too."""
    tags = ["1.2.0", "1.3.0", "2.0.0"]
    assert choose(_policy({}, "foo/bar:1.2.0"), tags, current="1.2.0") == "1.3.0"
    enabled = _policy({"extends": ["docker:enableMajor"]}, "foo/bar:1.2.0")
    assert choose(enabled, tags, current="1.2.0") == "2.0.0"


def test_allowed_versions_range_regex_and_update_types() -> None:
    """packageRules: allowedVersions as a range and as /regex/, and matchUpdateTypes
    [major, minor] disabled, become range, tags.include and allow: patch."""
    rules = {
        "extends": ["docker:enableMajor"],
        "packageRules": [
            {"matchDatasources": ["docker"], "matchPackageNames": ["python"],
             "allowedVersions": "<3.12"},
        ],
    }  # fmt: skip
    policy = _policy(rules, "python:3.10.1")
    assert choose(policy, ["3.10.1", "3.11.4", "3.12.0"], current="3.10.1") == "3.11.4"
    rules["packageRules"] = [
        {"matchPackageNames": ["/^pyth/"], "allowedVersions": "/^3\\.10\\./"},
        {"matchUpdateTypes": ["major", "minor"], "enabled": False},
    ]
    policy = _policy(rules, "python:3.10.1")
    assert "allow: patch" in policy
    assert choose(policy, ["3.10.1", "3.10.4", "3.11.4"], current="3.10.1") == "3.10.4"


def test_disabled_and_ignored_images_are_not_converted() -> None:
    """``enabled: false`` and ``ignoreDeps`` leave an image out, with a warning naming it."""
    files = {
        "renovate.json": json.dumps(
            {
                "ignoreDeps": ["redis"],
                "packageRules": [{"matchPackageNames": ["nginx"], "enabled": False}],
            }
        ),
        "compose.yaml": "services:\n  a: {image: 'nginx:1.25'}\n  b: {image: 'redis:7.2'}\n"
        "  c: {image: 'python:3.12'}\n",
    }
    migration = CONVERTERS["renovate"](files, None)
    (env,) = migration.environments
    assert [i.fields[0].value for i in env.images] == ["python"]
    assert any("nginx" in w for w in migration.warnings)
    assert any("redis" in w for w in migration.warnings)


def test_renovate_docs_example_converts_checks_and_plans(tmp_path: Path) -> None:
    """docs/usage/docker.md "Version compatibility": the foo/bar rule (semver versioning)
    converts into a policy ``imagebot check`` accepts, and ``imagebot plan`` proposes what
    Renovate would: foo/bar 1.2.0 -> 1.3.0 (no prerelease, no major by default) and
    node 1.2.0-alpine -> 1.2.1-alpine (never 1.2.1 or 1.2.1-stretch).

    Test-side substitutions: Docker Hub and the package name foo/bar -> the loopback
    registry's repositories; the repository is a clone of a local bare remote.
    """
    with run_registry(tmp_path / "registry") as registry:
        host = registry.host
        for tag in ("1.2.0", "1.2.1", "1.3.0", "1.4.0-rc.1", "2.0.0"):
            push_image(registry, "foo/bar", tag)
        for tag in ("1.2.0-alpine", "1.2.1-alpine", "1.2.1", "1.2.1-stretch", "2.0.0-alpine"):
            push_image(registry, "library/node", tag)
        config = (FIXTURES / "renovate" / "renovate.json").read_text()
        compose = (
            f"services:\n  bar:\n    image: {host}/foo/bar:1.2.0\n"
            f"  node:\n    image: {host}/library/node:1.2.0-alpine\n"
        )
        remote = make_remote(
            tmp_path / "git",
            {
                "renovate.json": config.replace('"foo/bar"', f'"{host}/foo/bar"').encode(),
                "compose.yaml": compose.encode(),
            },
        )
        checkout = tmp_path / "checkout"
        git("clone", "--quiet", str(remote), str(checkout), cwd=tmp_path)
        (env,) = migrate_and_plan("renovate", checkout, tmp_path)
        moves = {c["repository"].rsplit("/", 1)[-1]: c["to"]["tag"] for c in env["changes"]}
        assert moves == {"bar": "1.3.0", "node": "1.2.1-alpine"}


def test_regex_versioning_orders_by_its_groups() -> None:
    """versioning regex:…(?<major>)(?<minor>)(?<patch>) (the form docs/usage/configuration-
    options.md shows): tags that match, ordered numerically by those groups."""
    regex = "regex:^(?<major>\\d+)\\.(?<minor>\\d+)\\.(?<patch>\\d+)(?:-(?<compatibility>.*))?$"
    rules = {
        "extends": ["docker:enableMajor"],
        "packageRules": [{"matchPackageNames": ["foo/bar"], "versioning": regex}],
    }
    policy = _policy(rules, "foo/bar:1.2.3")
    assert 'extract: "$major.$minor.$patch"' in policy
    assert choose(policy, ["1.2.3", "1.3.0", "1.10.0", "x"], current="1.2.3") == "1.10.0"


def test_renovate_json5_is_read() -> None:
    """A renovate.json5 (comments, unquoted keys, trailing commas) converts like JSON."""
    files = {
        "renovate.json5": "{\n  // docker rules\n  extends: ['docker:enableMajor'],\n"
        "  packageRules: [{matchPackageNames: ['python'], allowedVersions: '<3.12',},],\n}\n",
        "compose.yaml": "services:\n  app:\n    image: python:3.10.1\n",
    }
    (policy,) = converted("renovate", files, "https://git.example.com/acme/env.git")
    assert 'range: "<3.12"' in policy and "allow:" not in policy


UNSTABLE = {"extends": ["docker:enableMajor"], "ignoreUnstable": False}


@pytest.mark.parametrize(
    ("version", "running", "compatible"),
    [
        ("3.8.0b1-alpine", "3.7.0", False),
        ("3.8.0b1-alpine", "3.7.0-alpine", True),
    ],
)
def test_hyphenless_prerelease_compatibility(version: str, running: str, compatible: bool) -> None:
    """isCompatible with Docker's hyphenless prereleases: with ignoreUnstable false, a
    converted policy moves to ``version`` exactly when Renovate finds it compatible (the
    rows where ``version`` is newer); ``3.8.0b1-alpine`` is the alpine variant's prerelease."""
    policy = _policy(UNSTABLE, image=f"python:{running}")
    want = version if compatible else running
    assert choose(policy, [running, version], current=running) == want


@pytest.mark.parametrize("version", ["3.7.0b1", "3.8.0b1-alpine"])
def test_hyphenless_prerelease_is_unstable(version: str) -> None:
    """isStable("3.7.0b1") and isStable("3.8.0b1-alpine") are false: with ignoreUnstable
    (Renovate's default) the converted policy stays on 3.6.0 (its variant), and with
    ignoreUnstable false it moves there."""
    running = "3.6.0-alpine" if version.endswith("-alpine") else "3.6.0"
    tags = [running, version]
    assert choose(_policy({}, f"python:{running}"), tags, current=running) == running
    assert choose(_policy(UNSTABLE, f"python:{running}"), tags, current=running) == version


def test_hyphenless_prereleases_sort_before_their_release() -> None:
    """Spec "sorts unstable": 3.7.0b1 < 3.7.0b5 < 3.7.0 and 3.8.0b1-alpine < 3.8.0-alpine, so a
    running beta moves to the later beta, then to the release."""
    policy = _policy(UNSTABLE, "python:3.7.0b1")
    assert choose(policy, ["3.7.0b1", "3.7.0b5"], current="3.7.0b1") == "3.7.0b5"
    assert choose(policy, ["3.7.0b1", "3.7.0b5", "3.7.0"], current="3.7.0b1") == "3.7.0"
    alpine = ["3.7.0-alpine", "3.8.0b1-alpine", "3.8.0-alpine"]
    policy = _policy(UNSTABLE, "python:3.7.0-alpine")
    assert choose(policy, alpine, current="3.7.0-alpine") == "3.8.0-alpine"


def test_prerelease_numbers_order_numerically_on_purpose() -> None:
    """Renovate's docker versioning compares prereleases as text (``localeCompare`` in
    lib/modules/versioning/docker/index.ts), so 3.7.0b10 sorts below 3.7.0b5 and a running
    3.7.0b5 stays; imagebot orders them by number, as SemVer does, and moves to 3.7.0b10
    (docs/migrating.md)."""
    policy = _policy(UNSTABLE, "python:3.7.0b5")
    assert choose(policy, ["3.7.0b5", "3.7.0b10"], current="3.7.0b5") == "3.7.0b10"


def test_precision_is_preserved() -> None:
    """docs/usage/docker.md "Preservation of Version Precision": a running myimage:1.1 moves
    to 1.2 or 1.3, never to 1.2.0 or 1.3.0 (even when 1.3.0 is the newest); and isCompatible
    needs the same number of parts, so a running 3.7.0 never moves to 3.8."""
    policy = _policy({}, "myimage:1.1")
    assert choose(policy, ["1.1", "1.2", "1.2.0", "1.3", "1.3.0"], current="1.1") == "1.3"
    assert choose(policy, ["1.1", "1.2", "1.3.0"], current="1.1") == "1.2"
    policy = _policy({}, "python:3.7.0")
    assert choose(policy, ["3.7.0", "3.8"], current="3.7.0") == "3.7.0"


def test_mixed_precision_keeps_each_files_precision() -> None:
    """One image run as 1.1 in one file and 1.1.0 in another: one policy serves both and,
    as Renovate does, 1.1 moves to 1.2 (not the newer 1.3.0) and 1.1.0 to 1.3.0."""
    files = {
        "renovate.json": "{}",
        "a.yaml": "services:\n  app:\n    image: myimage:1.1\n",
        "b.yaml": "services:\n  app:\n    image: myimage:1.1.0\n",
    }
    (policy,) = converted("renovate", files, "https://git.example.com/acme/env.git")
    assert "include" not in policy
    assert choose(policy, ["1.1", "1.2", "1.3.0"], current="1.1") == "1.2"
    assert choose(policy, ["1.1", "1.2", "1.1.0", "1.3.0"], current="1.1.0") == "1.3.0"


def test_leading_zeros_are_numbers() -> None:
    """getMajor/getMinor("18.04") are 18 and 4, and equals("18.04", "18.4"): a running
    ubuntu 18.04 moves to 18.10 (no major by default), and to 20.04 with docker:enableMajor."""
    tags = ["18.04", "18.10", "20.04"]
    assert choose(_policy({}, "ubuntu:18.04"), tags, current="18.04") == "18.10"
    enabled = _policy({"extends": ["docker:enableMajor"]}, "ubuntu:18.04")
    assert choose(enabled, tags, current="18.04") == "20.04"

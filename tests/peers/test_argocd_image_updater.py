"""Argo CD Image Updater's own tests and end-to-end data, run through imagebot.

Sources: argoproj-labs/argocd-image-updater ``registry-scanner/pkg/image/version_test.go``
(``Test_LatestVersion``, ``Test_VersionConstraint_IsTagIgnored``) and the e2e suite
``test/e2e/suite/005-app-wide-update-strategy`` with its git testdata. Commits in
tests/peers/SOURCES.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from imagebot.migrate import CONVERTERS
from imagebot.migrate.argocd import split_image
from tests.peers.support import FIXTURES, choose, converted, migrate_and_plan
from tests.support.cli import run_cli
from tests.support.gitenv import make_remote
from tests.support.registry import push_image, run_registry

TAGS = ["0.1", "0.5.1", "0.9", "1.0", "1.0.1", "1.1.2", "2.0.3"]


def _app(annotations: dict[str, str]) -> dict[str, str]:
    """An Application with these annotations, as the updater's docs show them."""
    doc = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "app", "namespace": "argocd", "annotations": annotations},
        "spec": {
            "source": {
                "repoURL": "https://git.example.com/env.git",
                "path": "apps/app",
                "targetRevision": "main",
            }
        },
    }
    return {"app.yaml": yaml.safe_dump(doc)}


def _policy(image_list: str, **options: str) -> str:
    """The converted policy; ``options`` are ``<alias>.<option>`` annotations, spelt with
    ``__`` for the dot and ``_`` for the dash (``test__update_strategy``)."""
    annotations = {"argocd-image-updater.argoproj.io/image-list": image_list}
    for key, value in options.items():
        name = key.replace("__", ".").replace("_", "-")
        annotations[f"argocd-image-updater.argoproj.io/{name}"] = value
    (policy,) = converted("argocd-image-updater", _app(annotations))
    return policy


#: (Test_LatestVersion case, image-list entry, tags, what the updater picks; None: no update)
LATEST_VERSION = [
    ("Find the latest version without any constraint", "test=jannfis/test", TAGS, "2.0.3"),
    ("Find the latest version with a semver constraint on major", "test=jannfis/test:^1.0",
     TAGS, "1.1.2"),
    ("Find the latest version with a semver constraint on patch", "test=jannfis/test:~1.0",
     TAGS, "1.0.1"),
    ("Find the latest version with a non-semver current tag and semver constraint",
     "test=christianschlichtherle/test:^1.0", TAGS, "1.1.2"),
    ("Find the latest version with a non-semver current tag without any constraint",
     "test=christianschlichtherle/test", TAGS, "2.0.3"),
    ("Find the latest version without any constraint excludes pre-release versions",
     "test=xpkg.crossplane.io/crossplane/crossplane",
     ["v2.2.0", "v2.3.0-rc.0.18.g1abb7b5dd-ppc64le"], "v2.2.0"),
    ("Find the latest version with a semver constraint that has no match",
     "test=jannfis/test:~1.0", ["0.1", "0.5.1", "0.9", "2.0.3"], None),
    ("Find the latest version with no tags", "test=jannfis/test:~1.0", [], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "image", "tags", "peer"), LATEST_VERSION, ids=[c[0] for c in LATEST_VERSION]
)
def test_latest_version_semver(case: str, image: str, tags: list[str], peer: str | None) -> None:
    """Test_LatestVersion (semver cases): the converted image-list constraint picks what
    GetNewestVersionFromTags picks (no tag where the updater keeps the running one)."""
    assert choose(_policy(image), tags) == peer, case


def test_latest_version_newest_build() -> None:
    """Test_LatestVersion/"Find the latest version using latest sortmode": newest-build
    picks the tag built last (ll) whatever its name."""
    names = ["zz", "bb", "yy", "cc", "yy", "aa", "ll"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    created = {name: start + timedelta(seconds=5 * i) for i, name in enumerate(names)}
    policy = _policy("test=jannfis/test:bb", test__update_strategy="newest-build")
    assert "strategy: newest-build" in policy
    assert choose(policy, list(dict.fromkeys(names)), created=created) == "ll"


def test_latest_version_semver_with_only_invalid_tags() -> None:
    """Test_LatestVersion/"latest sortmode, invalid tags": semver over tags that are no
    versions updates nothing."""
    assert choose(_policy("test=jannfis/test:bb"), ["zz", "bb", "yy", "cc", "aa"]) is None


def test_latest_version_alphabetical() -> None:
    """Test_LatestVersion/"StrategyAlphabetical": the alphabetical strategy picks zz."""
    policy = _policy("test=jannfis/test:bb", test__update_strategy="alphabetical")
    assert choose(policy, ["zz", "bb", "yy", "cc", "aa", "ll"]) == "zz"


def test_latest_version_digest_follows_the_constraint_tag() -> None:
    """Test_LatestVersion/"StrategyDigest": the digest strategy follows the tag named in the
    image list (latest) and takes its digest."""
    policy = _policy("test=jannfis/test:latest", test__update_strategy="digest")
    assert "strategy: digest" in policy and "follow: latest" in policy
    digest = "sha256:" + "ab" * 32
    assert choose(policy, ["latest", "1.0"], digests={"latest": digest}) == "latest"


def test_invalid_semver_constraint_is_reported_and_dropped() -> None:
    """Test_LatestVersion/"semver constraint that is invalid" (latest): the updater fails;
    migrate warns, names the image, and writes no range (docs/migrating.md)."""
    annotations = {"argocd-image-updater.argoproj.io/image-list": "test=jannfis/test:latest"}
    migration = CONVERTERS["argocd-image-updater"](_app(annotations), None)
    assert any("range 'latest' is not accepted" in w for w in migration.warnings)
    assert not any(f.key == "range" for f in migration.environments[0].images[0].fields)


@pytest.mark.parametrize(
    ("ignored", "tag", "kept"),
    [
        ("tag1, tag2", "tag1", False),
        ("tag1, tag2", "tag2", False),
        ("tag1, tag2", "tag3", True),
        ("tag?, foo", "tag1", False),
        ("tag?, foo", "foo", False),
        ("tag?, foo", "tag10", True),
    ],
)
def test_ignore_tags_globs(ignored: str, tag: str, kept: bool) -> None:
    """Test_VersionConstraint_IsTagIgnored: ignore-tags globs become ``ignore`` globs that
    ignore exactly the tags the updater ignores."""
    policy = _policy(
        "test=jannfis/test", test__update_strategy="alphabetical", test__ignore_tags=ignored
    )
    assert (choose(policy, [tag]) == tag) is kept


def test_e2e_005_app_wide_update_strategy(tmp_path: Path) -> None:
    """e2e suite 005: the ImageUpdater selecting two Applications converts into two
    environments that ``imagebot check`` accepts, and ``imagebot plan`` moves each to the
    version 02-assert.yaml expects (semver ~1.0 -> 1.0.2; newest-build -> 2.0.0).

    Test-side substitutions: quay.io -> the loopback registry (tags 1.0.0, 1.0.1, 1.0.2 and
    2.0.0, built in that order); the testdata git URL -> a local remote holding the
    005-public-guestbook deployment.
    """
    fixtures = FIXTURES / "argocd-e2e-005"
    with run_registry(tmp_path / "registry") as registry:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        for i, tag in enumerate(("1.0.0", "1.0.1", "1.0.2", "2.0.0")):
            push_image(registry, "dkarpele/my-guestbook", tag, created=start + timedelta(days=i))

        def local(text: str) -> str:
            return text.replace("quay.io/", f"{registry.host}/")

        deployment = local((fixtures / "deployment.yaml").read_text())
        remote = make_remote(
            tmp_path / "git", {"005-public-guestbook/deployment.yaml": deployment.encode()}
        )
        manifests = tmp_path / "argocd"
        manifests.mkdir()
        install = local((fixtures / "01-install.yaml").read_text())
        install = install.replace("https://10.42.0.1:30003/testdata.git", str(remote))
        (manifests / "01-install.yaml").write_text(install)
        planned = {
            env["environment"]: [c["to"]["tag"] for c in env["changes"]]
            for env in migrate_and_plan("argocd-image-updater", manifests, tmp_path)
        }
    expected = {}
    for doc in yaml.safe_load_all((fixtures / "02-assert.yaml").read_text()):
        if doc["kind"] == "Application":
            (image,) = doc["spec"]["source"]["kustomize"]["images"]
            expected[doc["metadata"]["name"]] = [image.rpartition(":")[2]]
    assert (
        planned
        == expected
        == {
            "image-updater-005-01": ["1.0.2"],
            "image-updater-005-02": ["2.0.0"],
        }
    )


def test_image_updater_write_back_config_names_the_repository() -> None:
    """An ImageUpdater's writeBackConfig (git method, gitConfig repository and branch) gives
    the environment's repo, as the updater pushes there (config/samples in its repository)."""
    files = _app({})
    files["updater.yaml"] = yaml.safe_dump(
        {
            "apiVersion": "argocd-image-updater.argoproj.io/v1alpha1",
            "kind": "ImageUpdater",
            "metadata": {"name": "u", "namespace": "argocd"},
            "spec": {
                "writeBackConfig": {
                    "method": "git",
                    "gitConfig": {"repository": "https://git.example.com/deploy.git",
                                  "branch": "release"},
                },
                "applicationRefs": [
                    {"namePattern": "ap*", "images": [{"alias": "web",
                                                       "imageName": "nginx:1.27.x"}]}
                ],
            },
        }
    )  # fmt: skip
    (policy,) = converted("argocd-image-updater", files)
    assert "url: https://git.example.com/deploy.git" in policy
    assert "branch: release" in policy
    assert "name: web" in policy and "range: 1.27.x" in policy
    assert "write-back-method argocd" not in policy


#: Test_MarshalParamsOverride (pkg/argocd/update_test.go, commit de2cfec6) helmvalues cases:
#: (case, values file before, set-image arguments, the updater's expected file)
WRITE_BACK = [
    (
        "Valid Helm source with Helm values file",
        "\nimage.name: nginx\nimage.tag: v0.0.0\nreplicas: 1\n",
        [["--image", "nginx", "--tag", "v1.0.0"]],
        "\nimage.name: nginx\nimage.tag: v1.0.0\nreplicas: 1\n",
    ),
    (
        "Valid Helm source with Helm values file with multiple images",
        "\nnginx.image.name: nginx\nnginx.image.tag: v0.0.0\nredis.image.name: redis\n"
        "redis.image.tag: v0.0.0\nreplicas: 1\n",
        [["--image", "nginx", "--tag", "v1.0.0"], ["--image", "redis", "--tag", "v1.0.0"]],
        "\nnginx.image.name: nginx\nnginx.image.tag: v1.0.0\nredis.image.name: redis\n"
        "redis.image.tag: v1.0.0\nreplicas: 1\n",
    ),
    (
        "Valid Helm source with Helm values file with multiple aliases",
        "\nfoo.image.name: nginx\nfoo.image.tag: v0.0.0\nbar.image.name: nginx\n"
        "bar.image.tag: v0.0.0\nbbb.image.name: nginx\nbbb.image.tag: v0.0.0\nreplicas: 1\n",
        [["--image", "nginx", "--tag", "v1.0.0"]],
        "\nfoo.image.name: nginx\nfoo.image.tag: v1.0.0\nbar.image.name: nginx\n"
        "bar.image.tag: v1.0.0\nbbb.image.name: nginx\nbbb.image.tag: v1.0.0\nreplicas: 1\n",
    ),
    (
        "Failed to setValue image parameter name",
        "\ntest-value1: one\nimage:\n  name: nginx\nreplicas: 1\n",
        [["--image", "nginx", "--tag", "v1.0.0"]],
        "\ntest-value1: one\nimage:\n  name: nginx\n  tag: v1.0.0\nreplicas: 1\n",
    ),
]


@pytest.mark.parametrize(
    ("case", "before", "runs", "expected"), WRITE_BACK, ids=[c[0] for c in WRITE_BACK]
)
def test_helm_values_write_back_layouts(
    tmp_path: Path, case: str, before: str, runs: list[list[str]], expected: str
) -> None:
    """Test_MarshalParamsOverride: Helm values in the updater's layouts (dotted keys, an
    ``image: {name}`` block lacking its tag) end up byte for byte as the updater writes
    them when imagebot sets the same version."""
    path = tmp_path / "values.yaml"
    path.write_text(before)
    for args in runs:
        result = run_cli("set-image", str(path), *args)
        assert result.returncode == 0, (case, result.stderr)
    assert path.read_text() == expected


@pytest.mark.parametrize(
    ("identifier", "parts"),
    [
        ("jannfis/test-image:0.1", ("", "jannfis/test-image", "0.1")),
        ("test-image", ("", "test-image", "")),
        ("library/test-image", ("", "library/test-image", "")),
        (
            "harbor.example.com/library/test-image:0.1",
            ("", "harbor.example.com/library/test-image", "0.1"),
        ),
        ("gcr.io/jannfis/test-image:0.1", ("", "gcr.io/jannfis/test-image", "0.1")),
        ("gcr.io/jannfis/test-image@sha256:abcde", ("", "gcr.io/jannfis/test-image", "")),
        (
            "gcr.io/jannfis/test-image:test-tag@sha256:abcde",
            ("", "gcr.io/jannfis/test-image", "test-tag"),
        ),
        ("localhost:5000/foo", ("", "localhost:5000/foo", "")),
        ("foo=gcr.io/jannfis/test-image:~1.0", ("foo", "gcr.io/jannfis/test-image", "~1.0")),
    ],
)
def test_image_list_entries(identifier: str, parts: tuple[str, str, str]) -> None:
    """Test_ParseImageTags (registry-scanner/pkg/image/image_test.go): an image-list entry
    splits into alias, image name and the tag part (the constraint) as the updater reads it."""
    assert split_image(identifier) == parts


def test_ignore_tags_become_ignore_globs_where_exact() -> None:
    """ignore-tags under semver: a glob becomes an ``ignore`` entry; a version (which
    ``ignore`` would read as a range, ignoring v7.2.0 too) and a Go ``[^…]`` class become
    anchored exclude regexes, so exactly the tags filepath.Match matches are ignored."""
    policy = _policy("redis=redis:7.x", redis__ignore_tags="*-debug, 7.2.0, 7.3.[^0]")
    assert 'ignore: ["*-debug"]' in policy
    assert 'exclude: ["^7\\\\.2\\\\.0$", "^7\\\\.3\\\\.[^0]$"]' in policy
    assert choose(policy, ["7.1.0", "7.2.0", "7.2.1-debug"]) == "7.1.0"
    assert choose(policy, ["7.1.0", "v7.2.0", "7.2.0"]) == "v7.2.0"
    assert choose(policy, ["7.3.0", "7.3.1"]) == "7.3.0"


def test_docs_prerelease_constraint() -> None:
    """docs/basics/update-strategies.md: "to allow updates to pre-release versions (e.g.
    v2.0-rc1), append the suffix -0 to the constraint" (some/image:2.x-0): the converted
    policy picks v2.0-rc1 over 1.9.0, and without -0 it does not."""
    tags = ["1.9.0", "v2.0-rc1", "3.0.0-rc1"]
    assert choose(_policy("someImage=some/image:2.x-0"), tags) == "v2.0-rc1"
    assert choose(_policy("someImage=some/image:2.x"), tags) is None

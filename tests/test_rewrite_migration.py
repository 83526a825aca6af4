"""File layouts of the tools users migrate from: Flux markers (whole reference, ``:name``,
``:digest``), Argo CD Image Updater's Helm layout and write-back files, digest-only pins,
``detect: markers`` and marker namespaces."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagebot.core.plan import ImageScan, plan_environment
from imagebot.core.policy_file import parse_policy
from imagebot.core.rewrite import Edit, apply, locate
from imagebot.core.selection import TagInfo
from imagebot.errors import EditError
from tests.support.cli import run_cli
from tests.support.gitenv import make_remote, show
from tests.support.registry import push_image, run_registry

OLD = "sha256:" + "ab" * 32
NEW = "sha256:" + "cd" * 32
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _plan(policy_yaml: str, files: dict[str, str], tags: dict[str, str]) -> object:
    loaded = parse_policy(textwrap.dedent(policy_yaml), source="dev.yaml")
    targets = {path: locate(text, source=path) for path, text in files.items()}
    repository = loaded.policy.images[0].normalized_repository
    scan = ImageScan(tags=tuple(TagInfo(name=t) for t in tags), digests=tags)
    return plan_environment(
        loaded.policy,
        source="dev.yaml",
        files=files,
        targets=targets,
        scans={repository: scan},
        now=NOW,
    )


POLICY = """\
environment: dev
repo: {url: /nowhere}
images:
  - {name: app, repository: ghcr.io/acme/app}
"""
TAGS = {"1.0.0": OLD, "1.0.1": NEW}


def test_whole_reference_marker_on_another_repository_writes_the_policy_reference() -> None:
    """A Flux whole-reference marker on ``old/name:1.0.0`` becomes ``ghcr.io/acme/app:1.0.1``
    (the marker owns the reference), and the plan names the replaced name."""
    text = 'image: old/name:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
    plan = _plan(POLICY, {"app.yaml": text}, TAGS)
    assert plan.new_files == {  # type: ignore[attr-defined]
        "app.yaml": 'image: ghcr.io/acme/app:1.0.1 # {"$imagepolicy": "flux-system:app"}\n'
    }
    (change,) = plan.changes  # type: ignore[attr-defined]
    assert change.new_name == "ghcr.io/acme/app"
    assert "name set to ghcr.io/acme/app" in change.reason
    assert "(name written: ghcr.io/acme/app)" in change.summary()


def test_whole_reference_marker_on_the_same_repository_keeps_its_spelling() -> None:
    """A marker on a reference already naming the policy's repository changes only the tag."""
    text = 'image: ghcr.io/acme/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
    plan = _plan(POLICY, {"app.yaml": text}, TAGS)
    assert plan.new_files["app.yaml"] == text.replace("1.0.0", "1.0.1")  # type: ignore[attr-defined]
    assert plan.changes[0].new_name is None  # type: ignore[attr-defined]


def test_digest_marker_without_tag_sibling_takes_the_digest() -> None:
    """A ``:digest`` marker with no ``:tag`` sibling is pinned by digest alone and gets the
    new version's digest, no tag."""
    text = f'app:\n  digest: "{OLD}" # {{"$imagepolicy": "flux-system:app:digest"}}\n'
    (target,) = locate(text)
    assert target.digest_only
    assert apply(text, [Edit(target, "1.0.1", NEW)]) == text.replace(OLD, NEW)
    plan = _plan(POLICY, {"v.yaml": text}, TAGS)
    assert plan.new_files == {"v.yaml": text.replace(OLD, NEW)}  # type: ignore[attr-defined]


def test_kustomize_digest_without_new_tag_takes_the_digest() -> None:
    """A kustomize entry pinned by ``digest:`` alone gets the new digest and no newTag."""
    text = f"images:\n  - name: ghcr.io/acme/app\n    digest: {OLD}\nresources: [a.yaml]\n"
    (target,) = locate(text)
    assert apply(text, [Edit(target, "1.0.1", NEW)]) == text.replace(OLD, NEW)


def test_name_marker_is_written_with_the_policy_image() -> None:
    """A ``:name`` marker receives the policy's image name, beside its ``:tag`` sibling."""
    text = (
        "spec:\n"
        '  name: old/engine # {"$imagepolicy": "flux-system:app:name"}\n'
        '  version: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
    )
    plan = _plan(POLICY, {"cr.yaml": text}, TAGS)
    assert plan.new_files["cr.yaml"] == text.replace(  # type: ignore[attr-defined]
        "old/engine", "ghcr.io/acme/app"
    ).replace("1.0.0", "1.0.1")


def test_name_marker_on_kustomize_new_name_is_written() -> None:
    """Flux's kustomize layout (``newName`` marked ``:name``, ``newTag`` marked ``:tag``)
    gets the policy's image name in ``newName``."""
    text = (
        "images:\n"
        "  - name: app\n"
        '    newName: old/app # {"$imagepolicy": "flux-system:app:name"}\n'
        '    newTag: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
    )
    plan = _plan(POLICY, {"kustomization.yaml": text}, TAGS)
    assert plan.new_files["kustomization.yaml"] == text.replace(  # type: ignore[attr-defined]
        "old/app", "ghcr.io/acme/app"
    ).replace("1.0.0", "1.0.1")


@pytest.mark.parametrize(
    "block",
    [
        "image:\n  name: nginx\n  tag: v1\n",
        "image:\n  registry: docker.io\n  name: library/nginx\n  tag: v1\n",
        "image:\n  repository: nginx\n  tag: v1\n",
        "image: {name: nginx, tag: v1}\n",
    ],
)
def test_argocd_image_updater_helm_layout_name_and_repository(block: str) -> None:
    """``image: {name, tag}`` (Argo CD Image Updater's default) is an image block, with or
    without ``registry``, as is the ``repository`` spelling."""
    (target,) = locate(block, repositories=["nginx"])
    assert (target.repository, target.tag) == ("docker.io/library/nginx", "v1")
    assert apply(block, [Edit(target, "v2", None)]) == block.replace("v1", "v2")


def test_container_name_beside_image_is_not_a_block() -> None:
    """A container's ``name`` next to its ``image`` string is not read as a name block."""
    text = "containers:\n  - name: nginx\n    image: nginx:1.25\n    tag: x\n"
    assert [t.field for t in locate(text)] == ["containers[0].image"]


ARGOCD_SOURCE = """\
helm:
  parameters:
  - name: image.name
    value: ghcr.io/acme/app
    forcestring: true
  - name: image.tag
    value: 1.0.0
    forcestring: true
"""
ARGOCD_SOURCE_KUSTOMIZE = "kustomize:\n  images:\n  - app=ghcr.io/acme/app:1.0.0\n"
ARGOCD_SOURCE_VALUES = (
    "helm:\n  valuesObject:\n    image:\n      name: ghcr.io/acme/app\n      tag: 1.0.0\n"
)


@pytest.mark.parametrize("text", [ARGOCD_SOURCE, ARGOCD_SOURCE_KUSTOMIZE, ARGOCD_SOURCE_VALUES])
def test_argocd_source_override_file_is_a_kind(text: str) -> None:
    """``.argocd-source-<app>.yaml`` (helm.parameters, helm.valuesObject, kustomize.images)
    is located as kind ``argocd-source`` and edited in place, the alias kept."""
    (target,) = locate(text, source=".argocd-source-app.yaml", repositories=["ghcr.io/acme/app"])
    assert (target.kind, target.repository, target.tag) == (
        "argocd-source",
        "ghcr.io/acme/app",
        "1.0.0",
    )
    assert apply(text, [Edit(target, "1.0.1", None)]) == text.replace("1.0.0", "1.0.1")


def test_application_kustomize_image_strings() -> None:
    """An Application's ``spec.source.kustomize.images`` strings are Argo CD image strings."""
    text = (
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n"
        "    kustomize:\n      images:\n      - nginx=ghcr.io/acme/nginx:1.0.0\n"
    )
    (target,) = locate(text)
    assert (target.kind, target.repository) == ("argocd-application", "ghcr.io/acme/nginx")
    out = apply(text, [Edit(target, "1.1.0", NEW)])
    assert out == text.replace(":1.0.0", f":1.1.0@{NEW}")


def test_set_image_refuses_a_pinned_group_without_digest(tmp_path: Path) -> None:
    """``set-image`` without ``--digest`` on a marker group pinning a digest refuses, names
    the field, and writes nothing (never ``imageDigest: ""``)."""
    path = tmp_path / "values.yaml"
    text = (
        'imageTag: 1.0.0 # {"$imagepolicy": "flux-system:app:tag"}\n'
        f'imageDigest: {OLD} # {{"$imagepolicy": "flux-system:app:digest"}}\n'
        'imageName: ghcr.io/acme/app # {"$imagepolicy": "flux-system:app:name"}\n'
    )
    path.write_text(text)
    result = run_cli("set-image", str(path), "--image", "ghcr.io/acme/app", "--tag", "1.0.1")
    assert result.returncode == 1
    assert "pins digest" in result.stderr and "--digest" in result.stderr
    assert path.read_text() == text
    result = run_cli(
        "set-image", str(path), "--image", "ghcr.io/acme/app", "--tag", "1.0.1", "--digest", NEW
    )
    assert result.returncode == 0, result.stderr
    assert path.read_text() == text.replace("1.0.0", "1.0.1").replace(OLD, NEW)


def test_set_image_digest_without_tag(tmp_path: Path) -> None:
    """``set-image --digest D`` without ``--tag`` keeps the tag and writes the digest."""
    path = tmp_path / "deploy.yaml"
    path.write_text(f"image: ghcr.io/acme/app:1.0.0@{OLD}\n")
    result = run_cli("set-image", str(path), "--image", "ghcr.io/acme/app", "--digest", NEW)
    assert result.returncode == 0, result.stderr
    assert path.read_text() == f"image: ghcr.io/acme/app:1.0.0@{NEW}\n"
    assert f"1.0.0@{OLD} -> ghcr.io/acme/app:1.0.0@{NEW}" in result.stdout


def test_detect_markers_edits_only_marked_fields() -> None:
    """With ``detect: markers`` an unmarked reference of the watched repository stays."""
    text = (
        "a: ghcr.io/acme/app:1.0.0\n"
        "image: ghcr.io/acme/app:1.0.0\n"
        'b:\n  image: ghcr.io/acme/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
    )
    auto = _plan(POLICY, {"v.yaml": text}, TAGS)
    assert auto.new_files["v.yaml"].count("1.0.1") == 2  # type: ignore[attr-defined]
    markers = _plan(POLICY + "detect: markers\n", {"v.yaml": text}, TAGS)
    assert markers.new_files["v.yaml"] == (  # type: ignore[attr-defined]
        "a: ghcr.io/acme/app:1.0.0\n"
        "image: ghcr.io/acme/app:1.0.0\n"
        'b:\n  image: ghcr.io/acme/app:1.0.1 # {"$imagepolicy": "flux-system:app"}\n'
    )


def test_marker_namespace_leaves_other_namespaces_markers_alone() -> None:
    """With ``marker_namespace: apps`` a marker naming ``flux-system:app`` is another
    environment's and stays; ``apps:app`` and ``# imagebot: app`` are edited."""
    text = (
        'one: ghcr.io/acme/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
        'two: ghcr.io/acme/app:1.0.0 # {"$imagepolicy": "apps:app"}\n'
        "three: ghcr.io/acme/app:1.0.0 # imagebot: app\n"
    )
    policy = POLICY + "detect: markers\nmarker_namespace: apps\n"
    plan = _plan(policy, {"v.yaml": text}, TAGS)
    assert plan.new_files["v.yaml"] == text.replace(  # type: ignore[attr-defined]
        'app:1.0.0 # {"$imagepolicy": "apps', 'app:1.0.1 # {"$imagepolicy": "apps'
    ).replace("app:1.0.0 # imagebot", "app:1.0.1 # imagebot")


def test_invalid_name_is_refused() -> None:
    """An edit naming something that is not a bare repository is refused."""
    text = 'image: a/b:1 # {"$imagepolicy": "ns:app"}\n'
    (target,) = locate(text)
    with pytest.raises(EditError, match="not a bare repository"):
        apply(text, [Edit(target, "2", None, name="a/b:3")])


def test_cycle_reads_a_kustomization_file_named_kustomization(tmp_path: Path) -> None:
    """A kustomization file named ``Kustomization`` (no suffix) is read and updated by
    ``imagebot apply`` against a real registry and git remote; a Flux whole-reference
    marker on another repository's name gets the policy's reference."""
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        for tag in ("1.0.0", "1.0.1"):
            push_image(registry, "acme/app", tag)
        kustomization = (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"images:\n  - name: {image}\n    newTag: 1.0.0\n"
        )
        marked = 'image: old/name:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
        remote = make_remote(
            tmp_path,
            {"envs/dev/Kustomization": kustomization.encode(), "envs/dev/v.yaml": marked.encode()},
        )
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "dev.yaml").write_text(
            f"environment: dev\nrepo: {{url: {remote}, path: envs/dev}}\n"
            f"images:\n  - {{name: app, repository: {image}}}\n"
        )
        result = run_cli(
            "apply", "--policies", str(policies), "--cache-dir", str(tmp_path / "cache")
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert show(remote, "envs/dev/Kustomization").decode() == kustomization.replace(
            "1.0.0", "1.0.1"
        )
        assert show(remote, "envs/dev/v.yaml").decode() == marked.replace(
            "old/name:1.0.0", f"{image}:1.0.1"
        )
        assert f"name written: {image}" in result.stdout


def test_empty_digest_only_field_gets_the_digest_without_a_pin_policy() -> None:
    """A ``:digest`` marker on an empty field, with no tag sibling and no ``digest: pin``,
    still receives the chosen version's digest: the field holds nothing else."""
    text = 'app:\n  digest: "" # {"$imagepolicy": "flux-system:app:digest"}\n'
    plan = _plan(POLICY, {"v.yaml": text}, TAGS)
    assert plan.problems == ()  # type: ignore[attr-defined]
    assert plan.new_files == {"v.yaml": text.replace('""', f'"{NEW}"')}  # type: ignore[attr-defined]


def test_flux_image_repository_ref_is_not_an_image_block() -> None:
    """``imageRepositoryRef: {name: podinfo}`` (a Flux ImagePolicy) names an object, not an
    image: a ``name`` block counts only under ``image`` or beside a tag."""
    text = "spec:\n  imageRepositoryRef:\n    name: podinfo\n"
    assert locate(text, repositories=["podinfo"]) == []


def test_dotted_helm_values_keys_are_a_block() -> None:
    """``image.name`` + ``image.tag`` dotted keys form one reference; labels with dots in
    their keys (``app.kubernetes.io/name``) do not."""
    text = "app.kubernetes.io/name: nginx\nimage.name: nginx\nimage.tag: v1\n"
    (target,) = locate(text, repositories=["nginx"])
    assert (target.field, target.tag) == ("image.tag", "v1")

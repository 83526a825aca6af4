"""kustomize's ``edit set image`` table, run through ``imagebot set-image``.

Source: kubernetes-sigs/kustomize ``kustomize/commands/edit/set/setimage_test.go``
(``TestSetImage``, commit a85dfd4141225d194ccb0e6a771438ca65c06483). kustomize's command
also adds entries and renames images; ``imagebot set-image`` sets versions of references a
file already holds, so the cases below are those where an entry exists and a version is
set. kustomize rewrites the whole entry in sorted key order; imagebot changes only the
version's characters, so each case compares the entries' fields, and the bytes outside them
stay as written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.cli import run_cli

DIGEST = "sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"

#: (TestSetImage description, file's images, set-image arguments, kustomize's images)
CASES = [
    (
        "override new tag and new name with just a new tag",
        "- name: image1\n  newTag: my-tag\n",
        ["--image", "image1", "--tag", "v1"],
        [{"name": "image1", "newTag": "v1"}],
    ),
    (
        "override new tag but keep new name",
        "- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: my-tag\n",
        ["--image", "foo.bar.foo:8800/foo/image1", "--tag", "v1"],
        [{"name": "image1", "newName": "foo.bar.foo:8800/foo/image1", "newTag": "v1"}],
    ),
    (
        "keep new name and update digest",
        "- name: image2\n  newName: my-image2\n  digest: sha256:abcdef12345\n",
        ["--image", "my-image2", "--digest", DIGEST],
        [{"name": "image2", "newName": "my-image2", "digest": DIGEST}],
    ),
    (
        "image1=my-image1:1234 (a numeric tag is quoted)",
        "- name: image1\n  newName: my-image1\n  newTag: old\n",
        ["--image", "my-image1", "--tag", "1234"],
        [{"name": "image1", "newName": "my-image1", "newTag": "1234"}],
    ),
    (
        "image1=my-image1:3.2e2 (a float-looking tag is quoted)",
        "- name: image1\n  newName: my-image1\n  newTag: old\n",
        ["--image", "my-image1", "--tag", "3.2e2"],
        [{"name": "image1", "newName": "my-image1", "newTag": "3.2e2"}],
    ),
    (
        "my-image1:my-tag@sha256:... (tag and digest)",
        "- name: my-image1\n  newTag: old\n",
        ["--image", "my-image1", "--tag", "my-tag", "--digest", DIGEST],
        [{"name": "my-image1", "newTag": "my-tag", "digest": DIGEST}],
    ),
]


@pytest.mark.parametrize(("case", "images", "args", "expected"), CASES, ids=[c[0] for c in CASES])
def test_set_image_table(
    tmp_path: Path, case: str, images: str, args: list[str], expected: list[dict[str, str]]
) -> None:
    """TestSetImage: the kustomization holds kustomize's expected image fields afterwards,
    every value a string, and the lines around the images are unchanged."""
    path = tmp_path / "kustomization.yaml"
    before = f"resources:\n- deployment.yaml\nimages:\n{images}# kept\n"
    path.write_text(before)
    result = run_cli("set-image", str(path), *args)
    assert result.returncode == 0, result.stderr
    after = path.read_text()
    assert yaml.safe_load(after)["images"] == expected, case
    assert after.startswith("resources:\n- deployment.yaml\nimages:\n")
    assert after.endswith("# kept\n")


def test_set_digest_keeps_the_tag_on_purpose(tmp_path: Path) -> None:
    """TestSetImage "keep new name, remove tag, and set digest": kustomize drops newTag when
    given only a digest; imagebot keeps the tag beside the new digest (the readable version
    stays; the digest decides what runs) — see docs/migrating.md."""
    path = tmp_path / "kustomization.yaml"
    path.write_text("images:\n- name: image2\n  newName: my-image2\n  newTag: my-tag\n")
    result = run_cli("set-image", str(path), "--image", "my-image2", "--digest", DIGEST)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(path.read_text())["images"] == [
        {"name": "image2", "newName": "my-image2", "newTag": "my-tag", "digest": DIGEST}
    ]


def test_set_image_never_renames_on_purpose(tmp_path: Path) -> None:
    """TestSetImage "override file": kustomize also replaces newName; imagebot set-image
    sets versions only, so the name stays and only the tag moves (docs/migrating.md)."""
    path = tmp_path / "kustomization.yaml"
    path.write_text("images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag\n")
    result = run_cli("set-image", str(path), "--image", "my-image1", "--tag", "foo-bar")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(path.read_text())["images"] == [
        {"name": "image1", "newName": "my-image1", "newTag": "foo-bar"}
    ]

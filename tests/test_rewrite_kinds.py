"""Byte-exact edits of each file kind: only the version's characters change."""

from __future__ import annotations

import pytest

from imagebot.core.rewrite import Edit, Target, apply, locate
from imagebot.core.rewrite.scalars import check_version
from imagebot.errors import EditError, InvalidReference

DIGEST = "sha256:" + "0123456789abcdef" * 4


def only(text: str, repository: str) -> Target:
    found = locate(text, repositories=[repository])
    assert len(found) == 1, found
    return found[0]


def set_version(text: str, repository: str, tag: str | None, digest: str | None = None) -> str:
    return apply(text, [Edit(only(text, repository), tag, digest)])


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the front end
spec:
  template:
    spec:
      initContainers:
      - name: migrate
        image: "ghcr.io/acme/backend:1.4.2"
      containers:
        - name: web
          image: ghcr.io/acme/backend:1.4.2  # keep me
          env:
            - name: SIDECAR
              value: ghcr.io/acme/backend:1.4.2
          args:
            - |
              docker run ghcr.io/acme/backend:1.4.2
"""


def test_deployment_containers_and_init_containers_change_only_the_tag() -> None:
    """Both container image fields of a Deployment get the new tag; env values and scripts don't."""
    found = locate(DEPLOYMENT, repositories=["ghcr.io/acme/backend"])
    assert [(t.kind, t.field, t.line, t.tag) for t in found] == [
        ("workload", "spec.template.spec.initContainers[0].image", 10, "1.4.2"),
        ("workload", "spec.template.spec.containers[0].image", 13, "1.4.2"),
    ]
    out = apply(DEPLOYMENT, [Edit(t, "1.5.0", None) for t in found])
    assert out == DEPLOYMENT.replace(
        'image: "ghcr.io/acme/backend:1.4.2"', 'image: "ghcr.io/acme/backend:1.5.0"'
    ).replace(
        "image: ghcr.io/acme/backend:1.4.2  # keep me",
        "image: ghcr.io/acme/backend:1.5.0  # keep me",
    )


def test_short_docker_hub_name_matches_normalised_repository_and_stays_short() -> None:
    """``nginx`` matches docker.io/library/nginx and is written back as ``nginx``."""
    text = "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: nginx:1.25\n"
    target = only(text, "docker.io/library/nginx")
    assert target.repository == "docker.io/library/nginx"
    assert apply(text, [Edit(target, "1.27.1", None)]) == text.replace("1.25", "1.27.1")


def test_digest_is_added_and_removed_in_an_image_string() -> None:
    """A digest pin is appended after the tag, and dropped again when the edit has none."""
    text = "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: nginx:1.25\n"
    pinned = set_version(text, "nginx", "1.26", DIGEST)
    assert pinned == text.replace("nginx:1.25", f"nginx:1.26@{DIGEST}")
    assert set_version(pinned, "nginx", "1.27") == text.replace("1.25", "1.27")


@pytest.mark.parametrize(
    ("digest", "valid"),
    [
        (DIGEST, True),
        ("sha512:" + "ab" * 64, True),
        ("sha256:" + "AB" * 32, False),  # go-digest refuses uppercase hex
        ("md5:" + "ab" * 16, False),  # not a registered algorithm
        ("sha256:" + "ab" * 20, False),
    ],
)
def test_only_a_digest_docker_accepts_reaches_a_file(digest: str, valid: bool) -> None:
    """A digest is written only when docker would pull by it: sha256 or sha512, lowercase hex
    of the right length (the same rule the registry client applies to what registries send)."""
    if valid:
        check_version("1.0", digest)
    else:
        with pytest.raises(InvalidReference, match="invalid digest"):
            check_version("1.0", digest)


def test_image_without_tag_gets_one() -> None:
    """A bare repository gains ``:tag``."""
    text = "services:\n  web:\n    image: 'redis'\n"
    assert set_version(text, "redis", "7.2") == "services:\n  web:\n    image: 'redis:7.2'\n"


VALUES = """\
# Default values for app.
image:
  registry: docker.io
  repository: bitnami/redis
  tag: 7.2.4-debian-12-r9 # renovate
  digest: ""
  pullPolicy: IfNotPresent
metrics:
  image:
    repository: "bitnami/redis-exporter"
    tag: '1.58'
"""


def test_helm_values_split_block_tag_and_digest() -> None:
    """A registry/repository/tag/digest block gets tag and digest written in their fields."""
    target = only(VALUES, "docker.io/bitnami/redis")
    assert (target.kind, target.field, target.tag, target.digest) == (
        "helm-values",
        "image",
        "7.2.4-debian-12-r9",
        None,
    )
    out = apply(VALUES, [Edit(target, "7.4.0", DIGEST)])
    assert out == VALUES.replace("7.2.4-debian-12-r9", "7.4.0").replace(
        'digest: ""', f'digest: "{DIGEST}"'
    )


def test_numeric_looking_tag_keeps_quotes_or_gains_them() -> None:
    """A tag YAML would read as a number is written quoted so it stays a string."""
    target = only(VALUES, "bitnami/redis-exporter")
    assert apply(VALUES, [Edit(target, "1.60", None)]) == VALUES.replace("'1.58'", "'1.60'")
    plain = "image:\n  repository: bitnami/redis\n  tag: v1\n"
    assert set_version(plain, "bitnami/redis", "1.10") == plain.replace("v1", '"1.10"')


def test_block_without_tag_gets_a_tag_key_after_repository() -> None:
    """An image block with only a repository gains ``tag:`` at the repository's indentation."""
    text = "server:\n  image:\n    repository: ghcr.io/a/b # upstream\n    pullPolicy: Always\n"
    assert set_version(text, "ghcr.io/a/b", "2.0") == (
        'server:\n  image:\n    repository: ghcr.io/a/b # upstream\n    tag: "2.0"\n'
        "    pullPolicy: Always\n"
    )


KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: backend
    newName: ghcr.io/acme/backend
    newTag: 1.4.2
  - name: nginx
  - name: redis
    newTag: "7"
    digest: sha256:aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999
"""


def test_kustomization_new_tag_is_replaced() -> None:
    """``newTag`` of the entry whose newName is the repository changes."""
    out = set_version(KUSTOMIZATION, "ghcr.io/acme/backend", "1.5.0")
    assert out == KUSTOMIZATION.replace("newTag: 1.4.2", "newTag: 1.5.0")


def test_kustomization_entry_without_new_tag_gains_one() -> None:
    """An entry with only ``name`` gains a ``newTag`` line under it."""
    out = set_version(KUSTOMIZATION, "nginx", "1.27")
    assert out == KUSTOMIZATION.replace(
        "  - name: nginx\n", '  - name: nginx\n    newTag: "1.27"\n'
    )


def test_kustomization_digest_line_is_removed_when_unpinned() -> None:
    """Setting a tag without a digest drops the entry's ``digest`` line."""
    out = set_version(KUSTOMIZATION, "redis", "8")
    lines = KUSTOMIZATION.splitlines(keepends=True)
    expected = "".join(lines[:-2]) + '    newTag: "8"\n'
    assert out == expected


def test_compose_service_image() -> None:
    """``services.*.image`` in a compose file changes; a ``${VAR}`` image is reported."""
    text = "services:\n  db:\n    image: postgres:16.1-alpine\n  app:\n    image: acme/app:${TAG}\n"
    found = locate(text)
    assert [(t.kind, t.repository, t.problem) for t in found] == [
        ("compose", "docker.io/library/postgres", None),
        ("compose", "docker.io/acme/app", "templated value"),
    ]
    assert apply(text, [Edit(found[0], "16.4-alpine", None)]) == text.replace("16.1", "16.4")
    with pytest.raises(EditError, match=r"<text>:5: .*templated value"):
        apply(text, [Edit(found[1], "2", None)])

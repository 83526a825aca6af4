"""HelmRelease, Argo CD Application, Flux Kustomization, markers and the prefilter."""

from __future__ import annotations

from imagebot.core.rewrite import Edit, apply, locate, mentions

DIGEST = "sha256:" + "9f" * 32

HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
spec:
  chart:
    spec:
      chart: podinfo
      version: 6.5.0
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo
      tag: 6.5.0
    redis:
      image: docker.io/library/redis:7.2
  postRenderers:
    - kustomize:
        images:
          - name: ghcr.io/stefanprodan/podinfo
            newTag: 6.5.0
"""


def test_helmrelease_values_and_post_renderer_images() -> None:
    """spec.values blocks and strings, and postRenderers kustomize images, are all found."""
    found = locate(HELMRELEASE)
    assert [(t.kind, t.field, t.repository) for t in found] == [
        ("helmrelease", "spec.values.image", "ghcr.io/stefanprodan/podinfo"),
        ("helmrelease", "spec.values.redis.image", "docker.io/library/redis"),
        (
            "kustomization",
            "spec.postRenderers[0].kustomize.images[0]",
            "ghcr.io/stefanprodan/podinfo",
        ),
    ]
    podinfo = [t for t in found if t.repository == "ghcr.io/stefanprodan/podinfo"]
    out = apply(HELMRELEASE, [Edit(t, "6.7.1", None) for t in podinfo])
    # The chart version 6.5.0 is not an image field and stays.
    assert out == HELMRELEASE.replace("tag: 6.5.0", "tag: 6.7.1").replace(
        "newTag: 6.5.0", "newTag: 6.7.1"
    )


APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  source:
    repoURL: https://charts.example.com
    chart: guestbook
    helm:
      parameters:
        - name: image.repository
          value: ghcr.io/acme/guestbook
        - name: image.tag
          value: "1.4.2"
        - name: worker.image
          value: ghcr.io/acme/worker:1.0.0
        - name: replicaCount
          value: "2"
      valuesObject:
        redis:
          image:
            registry: docker.io
            repository: bitnami/redis
            tag: 7.2.4
"""


def test_argocd_application_parameters_and_values_object() -> None:
    """Helm parameters (split and whole) and valuesObject image blocks are found and edited."""
    found = locate(APPLICATION)
    assert [(t.kind, t.field, t.repository, t.tag) for t in found] == [
        (
            "argocd-application",
            "spec.source.helm.parameters[image.tag]",
            "ghcr.io/acme/guestbook",
            "1.4.2",
        ),
        (
            "argocd-application",
            "spec.source.helm.parameters[worker.image]",
            "ghcr.io/acme/worker",
            "1.0.0",
        ),
        (
            "argocd-application",
            "spec.source.helm.valuesObject.redis.image",
            "docker.io/bitnami/redis",
            "7.2.4",
        ),
    ]
    out = apply(APPLICATION, [Edit(found[0], "1.5.0", None), Edit(found[2], "7.4.1", None)])
    assert out == APPLICATION.replace('"1.4.2"', '"1.5.0"').replace("7.2.4", "7.4.1")


FLUX_KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
spec:
  path: ./apps
  images:
    - name: podinfo
      newName: ghcr.io/stefanprodan/podinfo
      newTag: 6.5.0
"""


def test_flux_kustomization_spec_images() -> None:
    """A Flux Kustomization's spec.images entries are kustomize image entries."""
    (target,) = locate(FLUX_KUSTOMIZATION)
    assert (target.kind, target.field) == ("kustomization", "spec.images[0]")
    assert apply(FLUX_KUSTOMIZATION, [Edit(target, "6.7.1", DIGEST)]) == (
        FLUX_KUSTOMIZATION.replace("newTag: 6.5.0", f"newTag: 6.7.1\n      digest: {DIGEST}")
    )


FLUX_SETTERS = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:1.0.0 # {"$imagepolicy": "flux-system:app"}
---
apiVersion: example.com/v1
kind: Thing
spec:
  engine:
    name: ghcr.io/acme/engine # {"$imagepolicy": "flux-system:engine:name"}
    version: 2.0.0 # {"$imagepolicy": "flux-system:engine:tag"}
    pin: "" # {"$imagepolicy": "flux-system:engine:digest"}
  other: 2.0.0
"""


def test_flux_setters_on_known_fields_and_arbitrary_scalars() -> None:
    """A Flux setter names the policy of an image field, and makes any scalars a target."""
    found = locate(FLUX_SETTERS, repositories=["ghcr.io/something/else"])
    assert [(t.kind, t.policy, t.repository, t.tag, t.line) for t in found] == [
        ("workload", "app", "ghcr.io/acme/app", "1.0.0", 8),
        ("flux-setter", "engine", "ghcr.io/acme/engine", "2.0.0", 15),
    ]
    out = apply(FLUX_SETTERS, [Edit(found[1], "2.1.0", DIGEST)])
    assert out == FLUX_SETTERS.replace("version: 2.0.0", "version: 2.1.0").replace(
        'pin: ""', f'pin: "{DIGEST}"'
    )


def test_imagebot_marker_on_a_tag_scalar() -> None:
    """``# imagebot: <policy>`` on a bare version makes it a tag target of that policy."""
    text = "config:\n  backendVersion: '1.4.2' # imagebot: backend\n  other: '1.4.2'\n"
    (target,) = locate(text, repositories=[])
    assert (target.kind, target.policy, target.repository, target.tag) == (
        "marker",
        "backend",
        None,
        "1.4.2",
    )


def test_imagebot_marker_on_a_whole_reference() -> None:
    """``# imagebot: <policy>`` on a full reference string targets its version."""
    text = "tools:\n  migrate: ghcr.io/acme/migrate:0.9.0 # imagebot: migrate\n"
    (target,) = locate(text, repositories=[])
    assert (target.policy, target.repository, target.tag) == (
        "migrate",
        "ghcr.io/acme/migrate",
        "0.9.0",
    )
    out = apply(text, [Edit(target, "1.0.0", None)])
    assert out == text.replace("0.9.0", "1.0.0")


def test_imagebot_marker_with_tag_part() -> None:
    """``# imagebot: backend:tag`` marks a scalar holding only the tag."""
    text = "config:\n  backendVersion: '1.4.2' # imagebot: backend:tag\n  other: '1.4.2'\n"
    (target,) = locate(text)
    assert (target.kind, target.policy, target.tag) == ("marker", "backend", "1.4.2")
    assert apply(text, [Edit(target, "1.5.0", None)]) == text.replace("'1.4.2' #", "'1.5.0' #")


def test_marker_inside_a_block_scalar_is_text() -> None:
    """A marker-looking line inside a script is not a marker."""
    text = "script: |\n  image=nginx:1.25 # imagebot: web\nimage: redis:7\n"
    assert [t.repository for t in locate(text)] == ["docker.io/library/redis"]


def test_images_in_scripts_and_env_values_are_left_alone() -> None:
    """Only image fields count: env values, args and block scalars holding references do not."""
    text = (
        "kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - name: a\n    image: busybox:1.36\n"
        "    env:\n    - name: IMAGE\n      value: nginx:1.25\n"
        "    command: ['sh', '-c', 'docker pull nginx:1.25']\n"
    )
    assert [t.repository for t in locate(text)] == ["docker.io/library/busybox"]
    assert locate(text, repositories=["nginx"]) == []


def test_mentions_short_forms_split_blocks_and_markers() -> None:
    """The prefilter lets through short names, split registry/repository and markers only."""
    assert mentions("image: nginx:1.25\n", ["docker.io/library/nginx"])
    assert mentions("registry: ghcr.io\nrepository: acme/api\n", ["ghcr.io/acme/api"])
    assert mentions("registry: ghcr.io/acme\nrepository: api\n", ["ghcr.io/acme/api"])
    assert mentions("x: 1 # imagebot: api\n", ["ghcr.io/acme/api"])
    assert not mentions("image: redis:7\n", ["ghcr.io/acme/api", "docker.io/library/nginx"])
    assert not mentions("image: redis:7\n", [])


def test_registry_holding_part_of_the_path_is_found_with_a_repository_filter() -> None:
    """A chart whose registry field holds part of the path is found by a filtered locate."""
    text = "image:\n  registry: ghcr.io/acme\n  repository: api\n  tag: '1.0'\n"
    (target,) = locate(text, repositories=["ghcr.io/acme/api"])
    assert (target.repository, target.tag, target.line) == ("ghcr.io/acme/api", "1.0", 4)


def test_locate_with_repositories_skips_documents_that_do_not_mention_them() -> None:
    """Documents that do not mention a watched repository are not even parsed."""
    text = "a: [unclosed\n---\nimage: nginx:1.25\n"
    (target,) = locate(text, repositories=["nginx"])
    assert target.line == 3


def test_mentions_with_many_repositories_finds_whole_names_only() -> None:
    """With a hundred watched repositories the one-pass search finds whole names only,
    including one that starts inside a longer non-matching name."""
    many = [f"ghcr.io/acme/svc{i}" for i in range(100)] + ["docker.io/library/nats"]
    assert mentions("image: ghcr.io/acme/svc42:1.0\n", many)
    assert mentions("image: nats:2.10\n", many)
    assert not mentions("image: natsio/nats-server:2.10\n", many)
    assert not mentions("image: ghcr.io/acme/svc420:1.0\n", many)


def test_mentions_skips_a_name_that_is_only_a_key_or_a_label_value() -> None:
    """A watched name written only as a mapping key or as the plain value of a key that
    never holds an image (labels, namespaces) does not make a file worth parsing."""
    watched = ["docker.io/library/registry", "docker.io/library/nginx", "argoproj/argocd"]
    assert not mentions("image:\n  registry: docker.io\n  repository: x/y\n", watched)
    assert not mentions("- registry:\n    url: x\n", watched)
    assert not mentions("metadata:\n  labels:\n    app: nginx\n  namespace: argocd\n", watched)
    assert not mentions("nginx: nginx\n", watched[1:2])


def test_mentions_keeps_every_field_a_name_can_come_from() -> None:
    """Image keys, Helm block fields, kustomize and Argo CD parameter fields, flow style and
    marker documents all still count as a mention."""
    watched = ["docker.io/library/nginx"]
    for text in (
        "image: nginx:1.25\n",
        "initImage: nginx\n",
        "sidecar_image: nginx\n",
        "repository: nginx\n",
        "repo: nginx\n",
        "registry: nginx\n",
        "- name: nginx\n  newTag: '1'\n",
        "newName: nginx\n",
        "- name: image.repository\n  value: nginx\n",
        "containers: [{name: web, image: nginx}]\n",
        "app: 'nginx'\n",
        "app: nginx # imagebot: web\n",
    ):
        assert mentions(text, watched), text


def test_mentions_keeps_a_key_shaped_line_that_may_sit_in_a_multi_line_scalar() -> None:
    """A line ``nginx: ...`` right after a line that opens a quoted or block scalar, or ends
    in an escaped line break, may be scalar text, so it still counts."""
    watched = ["docker.io/library/nginx"]
    for text in (
        "image: >-\n  nginx: 1\n",
        "image: |\n\n  nginx: 1\n",
        'image: "\\\n  nginx: 1"\n',
        "image: '\n  nginx: 1'\n",
        'image: "ghcr.io/\\\n  nginx: 1"\n',
    ):
        assert mentions(text, watched), text


def test_locate_does_not_parse_a_document_naming_a_repository_only_in_labels() -> None:
    """A document whose only mention of a watched name is a label value is skipped unparsed,
    like one that does not mention it at all."""
    text = "a: [unclosed\napp: nginx\n---\nimage: nginx:1.25\n"
    (target,) = locate(text, repositories=["nginx"])
    assert target.line == 4

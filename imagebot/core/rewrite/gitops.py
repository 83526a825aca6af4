"""The image fields of GitOps tools' own files: kustomize ``images:`` entries, and Argo CD's
``kustomize.images`` strings and Helm ``parameters`` (in an Application or an
``.argocd-source-<app>.yaml`` write-back file), plus Helm values kept under dotted keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from imagebot.core.rewrite import spans
from imagebot.core.rewrite.documents import MappingNode, Node, ScalarNode, SequenceNode, is_str
from imagebot.core.rewrite.kinds import (
    Context,
    Found,
    first,
    format_path,
    found,
    image_string,
    is_image_key,
    normalised,
    pairs,
    version_slot,
)
from imagebot.core.rewrite.scalars import is_templated, split_reference
from imagebot.core.rewrite.targets import KeyInsert, KeyRemoval, Slot, YamlPath

KUSTOMIZE_KEYS = frozenset(
    (
        "resources",
        "bases",
        "components",
        "patches",
        "patchesStrategicMerge",
        "patchesJson6902",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "labels",
        "configMapGenerator",
        "secretGenerator",
        "helmCharts",
        "replicas",
    )
)


ARGOCD_SOURCE_KEYS = frozenset(("helm", "kustomize"))


def is_argocd_source(document: MappingNode) -> bool:
    """An Argo CD write-back override (``.argocd-source-<app>.yaml``): a document without
    apiVersion/kind whose only top-level keys are ``helm`` and/or ``kustomize``."""
    keys = {key for key, _, _ in pairs(document)}
    return bool(keys) and keys <= ARGOCD_SOURCE_KEYS


def is_kustomize_images(seq: SequenceNode, document: MappingNode | None) -> bool:
    """Top-level ``images:`` of a kustomization that has no apiVersion/kind."""
    items = [i for i in seq.value if isinstance(i, MappingNode)]
    if not items or not all(first(i, "name") for i in items):
        return False
    if any(first(i, k) for i in items for k in ("newName", "newTag", "digest")):
        return True
    keys = {key for key, _, _ in pairs(document)} if document else set()
    return bool(keys & KUSTOMIZE_KEYS)


def kustomize_images(
    ctx: Context, seq: SequenceNode, path: YamlPath, area: str = "kustomization"
) -> Iterator[Found]:
    """kustomize ``images:`` entries (``name``/``newName``/``newTag``/``digest``), and Argo
    CD's ``kustomize.images`` strings (``[alias=]repo:tag``) in an Application or an
    ``.argocd-source-<app>.yaml`` file."""
    string_kind = "argocd-source" if area == "argocd-source" else "argocd-application"
    for index, item in enumerate(seq.value):
        entry = None
        if isinstance(item, MappingNode):
            entry = _kustomize_entry(ctx, item, (*path, index))
        elif isinstance(item, ScalarNode) and path[-2:-1] == ("kustomize",):
            entry = _argocd_image_string(ctx, item, (*path, index), string_kind)
        if entry:
            yield entry


def _argocd_image_string(ctx: Context, node: ScalarNode, path: YamlPath, kind: str) -> Found | None:
    """``nginx=ghcr.io/acme/nginx:1.2`` (Argo CD's ``KustomizeImage``): the reference is
    after the ``=``; the alias before it names the image to replace and stays."""
    if not is_str(node) or not node.value:
        return None
    value = str(node.value)
    alias, eq, written = value.rpartition("=")
    if is_templated(value):
        return None
    name, tag, digest = split_reference(written)
    repository = normalised(name)
    if repository is None:
        return None
    slot = replace(ctx.slot(node, "ref", path), alias=alias + eq)
    return found(ctx, kind, format_path(path), repository, [slot], [id(node)], tag, digest)


def _kustomize_entry(ctx: Context, item: MappingNode, path: YamlPath) -> Found | None:
    entries = {key: (k, v) for key, k, v in pairs(item) if key is not None}
    name_entry = entries.get("newName") or entries.get("name")
    if name_entry is None or not is_str(name_entry[1]) or is_templated(str(name_entry[1].value)):
        return None
    repository = normalised(str(name_entry[1].value))
    if repository is None:
        return None
    slots: list[Slot] = []
    nodes = [id(name_entry[1])]
    if "name" in entries:
        nodes.append(id(entries["name"][1]))
    tag = digest = None
    anchor = max(
        (entries[k] for k in ("name", "newName") if k in entries),
        key=lambda kv: kv[1].end_mark.index,
    )
    inserts: list[KeyInsert] = []
    removal: KeyRemoval | None = None

    def insert_after(after: tuple[Node, Node], role: str, key: str) -> None:
        """Where a missing ``key`` would go: a new line after the ``after`` entry."""
        insert = spans.key_insert(
            ctx.text,
            ctx.base,
            item,
            *after,
            role=role,
            key=key,
            mapping_path=path,
            document=ctx.document,
        )
        if insert:
            inserts.append(insert)

    if "newTag" in entries:
        tag_slot = version_slot(ctx, entries["newTag"][1], (*path, "newTag"))
        if tag_slot is None:
            return None
        slots.append(tag_slot)
        nodes.append(id(entries["newTag"][1]))
        tag = tag_slot.value or None
        anchor = entries["newTag"]
    else:
        insert_after(anchor, "tag", "newTag")
    if "digest" in entries and isinstance(entries["digest"][1], ScalarNode):
        digest_slot = ctx.slot(entries["digest"][1], "digest", (*path, "digest"))
        slots.append(digest_slot)
        nodes.append(id(entries["digest"][1]))
        digest = digest_slot.value or None
        removal = spans.key_removal(
            ctx.text,
            ctx.base,
            item,
            *entries["digest"],
            key="digest",
            mapping_path=path,
            document=ctx.document,
        )
    else:
        insert_after(anchor, "digest", "digest")
    line = None if slots else ctx.line(name_entry[1])
    return found(ctx, "kustomization", format_path(path), repository, slots, nodes, tag, digest,
                 line=line, inserts=tuple(inserts), removal=removal)  # fmt: skip


_PARAM_ROLES = {
    "repository": "name",
    "repo": "name",
    "name": "name",
    "registry": "registry",
    "tag": "tag",
    "digest": "digest",
}


#: A parameter: its dotted name, the scalar holding its value, and that scalar's path.
Param = tuple[str, ScalarNode, YamlPath]


def argocd_parameters(
    ctx: Context, seq: SequenceNode, path: YamlPath, kind: str = "argocd-application"
) -> Iterator[Found]:
    """Argo CD ``helm.parameters``: ``<prefix>.repository`` + ``<prefix>.tag`` groups, or
    ``<prefix>.image`` holding a whole reference."""
    params: list[Param] = []
    for index, item in enumerate(seq.value):
        if not isinstance(item, MappingNode):
            continue
        name_kv, value_kv = first(item, "name"), first(item, "value")
        if not name_kv or not value_kv or not isinstance(value_kv[1], ScalarNode):
            continue
        params.append((str(name_kv[1].value), value_kv[1], (*path, index, "value")))
    yield from _parameter_groups(ctx, params, kind, f"{format_path(path)}[{{}}]", strings=True)


def dotted_values(ctx: Context, mapping: MappingNode, path: YamlPath, kind: str) -> Iterator[Found]:
    """Helm values kept under dotted keys (``image.name: nginx``, ``image.tag: v1``), as Argo
    CD Image Updater's ``helmvalues`` write-back leaves a file whose keys were written so."""
    params: list[Param] = [
        (key, value, (*path, key))
        for key, _, value in pairs(mapping)
        if key is not None and "." in key and isinstance(value, ScalarNode)
    ]
    if params:
        prefix = f"{format_path(path)}." if path else ""
        yield from _parameter_groups(ctx, params, kind, prefix + "{}", strings=False)


def _parameter_groups(
    ctx: Context, params: list[Param], kind: str, label: str, *, strings: bool
) -> Iterator[Found]:
    """``<prefix>.repository|name|repo`` + ``<prefix>.tag`` (+ registry, digest) groups; with
    ``strings``, also ``<prefix>.image`` parameters holding a whole reference."""
    groups: dict[str, dict[str, tuple[YamlPath, ScalarNode]]] = {}
    for param, value_node, value_path in params:
        prefix, _, last = param.rpartition(".")
        if strings and is_image_key(last):
            whole = image_string(ctx, value_node, value_path, kind)
            if whole:
                yield Found(replace(whole.target, field=label.format(param)), whole.nodes)
        elif last in _PARAM_ROLES:
            groups.setdefault(prefix, {})[_PARAM_ROLES[last]] = (value_path, value_node)
    for prefix, group in groups.items():
        if "name" not in group or "tag" not in group or not is_str(group["name"][1]):
            continue
        name = str(group["name"][1].value)
        if "registry" in group and group["registry"][1].value:
            name = f"{group['registry'][1].value}/{name}"
        repository = None if is_templated(name) else normalised(name)
        if repository is None:
            continue
        tag_path, tag_node = group["tag"]
        tag_slot = ctx.slot(tag_node, "tag", tag_path)
        slots = [tag_slot]
        nodes = [id(group["name"][1]), id(tag_node)]
        tag, _, in_tag = tag_slot.value.partition("@")
        digest = in_tag or None
        if "digest" in group:
            digest_path, digest_node = group["digest"]
            slots.append(ctx.slot(digest_node, "digest", digest_path))
            nodes.append(id(digest_node))
            digest = slots[-1].value or None
        field = label.format(f"{prefix}.tag" if prefix else "tag")
        yield found(ctx, kind, field, repository, slots, nodes, tag or None, digest)

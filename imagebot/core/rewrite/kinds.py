"""Recognise the image fields of each file kind in a composed YAML document.

Only these fields are image references: ``image`` (and ``*Image``) keys holding a string,
Helm-style ``{registry, repository, tag, digest}`` blocks, kustomize ``images:`` entries and
Argo CD Helm ``parameters`` (those two in :mod:`imagebot.core.rewrite.gitops`). A reference
written inside a block-scalar script or an env var ``value`` is text to us and stays
untouched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagebot.core.reference import parse
from imagebot.core.rewrite import spans
from imagebot.core.rewrite.documents import MappingNode, Node, ScalarNode, is_str
from imagebot.core.rewrite.scalars import is_templated, split_reference
from imagebot.core.rewrite.targets import KeyInsert, Slot, Target, YamlPath
from imagebot.errors import InvalidReference

REPOSITORY_KEYS = ("repository", "repo")
DIGEST_KEYS = ("digest", "sha")


def format_path(path: YamlPath) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += f".{step}" if out else step
    return out or "<document>"


def is_image_key(key: str) -> bool:
    """``image``, ``initImage``, ``sidecar_image``: keys that hold a whole reference."""
    return key == "image" or key.endswith(("Image", "_image"))


#: Keys whose value may hold (a part of) an image name: image strings, Helm blocks, kustomize
#: ``name``/``newName``, Argo CD parameter ``value``. The prefilter skips a watched name
#: written as the plain value of any other key (``app: nginx``); a new kind that takes a name
#: from another key must add it here.
NAME_KEYS = frozenset((*REPOSITORY_KEYS, "registry", "name", "newName", "value"))


def may_hold_name(key: str) -> bool:
    """Whether a scalar under ``key`` can be where a located reference's name comes from
    (also a dotted Helm values key such as ``image.name``)."""
    last = key.rpartition(".")[2]
    return key in NAME_KEYS or is_image_key(key) or last in NAME_KEYS


def normalised(name: str) -> str | None:
    """The normalised repository of ``name`` (which may carry a tag), or None if invalid."""
    try:
        return parse(name).repository
    except InvalidReference:
        return None


@dataclass
class Found:
    """A target under construction, with the nodes markers may point at."""

    target: Target
    nodes: list[int] = field(default_factory=list)
    """ids of the scalar nodes that belong to this reference (slots and names)."""


@dataclass
class Context:
    """Where in the file a document lies."""

    text: str
    source: str
    base: int
    base_line: int
    document: int = 0

    def line(self, node: Node) -> int:
        return self.base_line + node.start_mark.line + 1

    def slot(
        self, node: ScalarNode, role: str, path: YamlPath, *, hex_digest: bool = False
    ) -> Slot:
        return spans.slot(
            self.text,
            self.base,
            self.base_line,
            node,
            role,
            path,
            hex_digest=hex_digest,
            document=self.document,
        )


def pairs(mapping: MappingNode) -> Iterator[tuple[str | None, Node, Node]]:
    for key, value in mapping.value:
        yield (str(key.value) if isinstance(key, ScalarNode) else None), key, value


def first(mapping: MappingNode, name: str) -> tuple[Node, Node] | None:
    for key, value in mapping.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None


def image_string(ctx: Context, node: ScalarNode, path: YamlPath, kind: str) -> Found | None:
    """A ``repo:tag@digest`` string under an image key; None if it is not a reference."""
    if not is_str(node) or not node.value:
        return None
    value = str(node.value)
    name, tag, digest = split_reference(value)
    if is_templated(value):
        if is_templated(name):
            return None
        tag = digest = None  # the problem: a templated value
    repository = normalised(name)
    if repository is None:
        return None
    slot = ctx.slot(node, "ref", path)
    return found(ctx, kind, format_path(path), repository, [slot], [id(node)], tag, digest)


def found(
    ctx: Context, kind: str, field: str, repository: str, slots: Sequence[Slot], nodes: list[int],
    tag: str | None, digest: str | None, *, line: int | None = None, **more: Any,
) -> Found:  # fmt: skip
    """The target of a reference held by ``slots`` (a templated one is its problem), on the
    line of its first slot unless ``line`` says otherwise."""
    problem = "templated value" if any(is_templated(s.value) for s in slots) else None
    target = Target(
        source=ctx.source,
        line=line or slots[0].line,
        kind=kind,
        field=field,
        repository=repository,
        policy=None,
        tag=tag,
        digest=digest,
        problem=problem,
        slots=tuple(slots),
        **more,
    )
    return Found(target, nodes)


def version_slot(ctx: Context, node: Node, path: YamlPath) -> Slot | None:
    """The tag slot of ``node``; None when it cannot be a tag at all (a mapping, a list)."""
    return ctx.slot(node, "tag", path) if isinstance(node, ScalarNode) else None


def may_be_block(named: list[str], path: YamlPath) -> bool:
    """Whether a mapping with these keys at ``path`` can be an image block at all."""
    if "repository" in named or "repo" in named:
        return True
    return "name" in named and _named_image_block(named, path)


def _named_image_block(named: Collection[str], path: YamlPath) -> bool:
    # Argo CD Image Updater's default Helm layout spells the repository "name":
    # image: {name: nginx, tag: v1}. Only under a key naming an image and with a version
    # beside it, so a container's or a secret's "name" is never taken for one.
    # Directly under "image" the block may lack its tag (the updater adds one).
    parent = path[-1] if path and isinstance(path[-1], str) else ""
    has_version = "tag" in named or any(k in named for k in DIGEST_KEYS)
    return (has_version and "image" in parent.lower()) or parent == "image"


def image_block(ctx: Context, mapping: MappingNode, path: YamlPath, kind: str) -> Found | None:
    """A Helm values ``{registry, repository|repo|name, tag, digest|sha}`` block, or None."""
    entries = {key: (k, v) for key, k, v in pairs(mapping) if key is not None}
    repo_entry = next((entries[k] for k in REPOSITORY_KEYS if k in entries), None)
    if repo_entry is None and "name" in entries and _named_image_block(entries, path):
        repo_entry = entries["name"]
    if repo_entry is None or not is_str(repo_entry[1]) or not repo_entry[1].value:
        return None
    has_version = "tag" in entries or any(k in entries for k in DIGEST_KEYS)
    parent = path[-1] if path and isinstance(path[-1], str) else ""
    if not has_version and "image" not in parent.lower():
        return None
    repo_node = repo_entry[1]
    name = str(repo_node.value)
    registry = entries.get("registry")
    if registry and is_str(registry[1]) and registry[1].value:
        name = f"{registry[1].value}/{name}"
    if is_templated(name):
        return None
    repository = normalised(name)
    if repository is None:
        return None
    slots: list[Slot] = []
    nodes = [id(repo_node)]
    tag = digest = None
    if "tag" in entries:
        tag_slot = version_slot(ctx, entries["tag"][1], (*path, "tag"))
        if tag_slot is None:
            return None
        slots.append(tag_slot)
        nodes.append(id(entries["tag"][1]))
        tag, _, in_tag = tag_slot.value.partition("@")
        digest = in_tag or None
        tag = tag or None
    for key in DIGEST_KEYS:
        node = entries[key][1] if key in entries else None
        if isinstance(node, ScalarNode):
            digest_slot = ctx.slot(node, "digest", (*path, key), hex_digest=key == "sha")
            slots.append(digest_slot)
            nodes.append(id(node))
            if digest_slot.value:
                prefix = "sha256:" if key == "sha" else ""
                digest = prefix + digest_slot.value
            break
    inserts: tuple[KeyInsert, ...] = ()
    if "tag" not in entries:
        insert = spans.key_insert(
            ctx.text,
            ctx.base,
            mapping,
            *repo_entry,
            role="tag",
            key="tag",
            mapping_path=path,
            document=ctx.document,
        )
        inserts = (insert,) if insert else ()
    line = None if slots else ctx.line(repo_node)
    return found(ctx, kind, format_path(path), repository, slots, nodes, tag, digest,
                 line=line, inserts=inserts)  # fmt: skip

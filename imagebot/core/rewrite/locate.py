"""Walk each document once and collect its image references and markers."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Collection
from dataclasses import replace

from imagebot.core.reference import parse
from imagebot.core.rewrite import documents, gitops, kinds, markers, prefilter
from imagebot.core.rewrite.documents import Chunk, MappingNode, Node, ScalarNode, SequenceNode
from imagebot.core.rewrite.kinds import Context, Found, format_path, pairs
from imagebot.core.rewrite.scalars import is_templated, split_reference
from imagebot.core.rewrite.spans import scalar_value
from imagebot.core.rewrite.targets import Slot, Target, YamlPath
from imagebot.errors import EditError, InvalidReference

#: An alias bomb ("billion laughs") must not make locate or verify run for ever.
MAX_VISITS = 200_000

_SKIPPED_KINDS = frozenset(("CustomResourceDefinition",))
_LOOKS_LIKE_TAG = re.compile(r"^(?:[vV]?[0-9][\w.-]*)?$")


def locate(
    text: str, *, source: str = "<text>", repositories: Collection[str] | None = None
) -> list[Target]:
    """All image references and markers in ``text``, in file order.

    With ``repositories`` (normalised or short names), only documents that mention one of
    them or hold a marker are parsed, and only their references (plus every marker) are
    returned. Raises :class:`EditError` naming ``source`` and line if a parsed document is not
    YAML.
    """
    wanted = None if repositories is None else _normalise_all(frozenset(repositories))
    needles = None if wanted is None else prefilter.matcher(wanted)
    found: list[Target] = []
    # One scan of the whole text; each chunk then looks up its share of the hits.
    all_hits = None if needles is None else needles.positions(text, 0, len(text))
    for chunk in documents.split(text):
        hits = None
        if all_hits is not None:
            low = bisect.bisect_left(all_hits, chunk.start)
            high = bisect.bisect_left(all_hits, chunk.end)
            has_markers = markers.has_markers(text, chunk.start, chunk.end)
            if low == high and not has_markers:
                continue
            if not has_markers and not documents.has_anchor(text, chunk.start, chunk.end):
                hits = [at - chunk.start for at in all_hits[low:high]]
        for ordinal, document in enumerate(
            documents.compose(text, chunk, source=source, purpose="locate")
        ):
            targets = _Walker(text, source, chunk, ordinal, hits).document(document)
            found.extend(sorted(targets, key=lambda t: t.line))
    if wanted is not None:
        found = [t for t in found if t.policy is not None or t.repository in wanted]
    return found


@functools.lru_cache(maxsize=32)
def _normalise_all(repositories: frozenset[str]) -> frozenset[str]:
    out = set()
    for name in repositories:
        try:
            out.add(parse(name).repository)
        except InvalidReference as exc:
            raise EditError(f"cannot match repository {name!r}: {exc}") from exc
    return frozenset(out)


class _Walker:
    def __init__(
        self, text: str, source: str, chunk: Chunk, ordinal: int, hits: list[int] | None
    ) -> None:
        self.ctx = Context(text, source, chunk.start, chunk.line, ordinal)
        # Chunk offsets where a watched repository is named: a subtree whose text names
        # none cannot hold one of its references, so it is not walked.
        self.hits = hits
        self.chunk = chunk
        self.found: list[Found] = []
        self.visits = 0

    def document(self, root: Node) -> list[Target]:
        kind, api = self._identity(root)
        if kind in _SKIPPED_KINDS:
            return []
        if isinstance(root, MappingNode) and kind is None and api is None:
            services = kinds.first(root, "services")
            if services and isinstance(services[1], MappingNode):
                self._visit(root, (), "compose", None, kind, api)
                return self._finish(root)
        area = "workload" if kind else "helm-values"
        if isinstance(root, MappingNode) and kind is None and gitops.is_argocd_source(root):
            area = "argocd-source"
        self._visit(root, (), area, None, kind, api)
        return self._finish(root)

    @staticmethod
    def _identity(root: Node) -> tuple[str | None, str | None]:
        if not isinstance(root, MappingNode):
            return None, None
        kind = kinds.first(root, "kind")
        api = kinds.first(root, "apiVersion")
        return (
            str(kind[1].value) if kind and isinstance(kind[1], ScalarNode) else None,
            str(api[1].value) if api and isinstance(api[1], ScalarNode) else None,
        )

    def _visit(
        self,
        node: Node,
        path: YamlPath,
        area: str,
        problem: str | None,
        kind: str | None,
        api: str | None,
    ) -> None:
        self.visits += 1
        if self.visits > MAX_VISITS:
            raise EditError(
                f"{self.ctx.source}:{self.ctx.line(node)}: too many aliases to expand safely"
            )
        if self.hits is not None and isinstance(node, (MappingNode, SequenceNode)):
            i = bisect.bisect_left(self.hits, node.start_mark.index)
            if i == len(self.hits) or self.hits[i] > node.end_mark.index:
                return
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self._visit(item, (*path, index), area, problem, kind, api)
            return
        if not isinstance(node, MappingNode):
            return
        named = [str(k.value) for k, _ in node.value if isinstance(k, ScalarNode)]
        if len(set(named)) != len(named):
            dup = next(k for k in named if named.count(k) > 1)
            problem = problem or f"duplicate key {dup!r} in {format_path(path)}"
        if area != "compose" and kinds.may_be_block(named, path):
            block = kinds.image_block(self.ctx, node, path, area)
            if block is not None:
                self._add(block, problem)
                return
        if area != "compose" and any("." in k and k.endswith(".tag") for k in named):
            for dotted in gitops.dotted_values(self.ctx, node, path, area):
                self._add(dotted, problem)
        for key_node, value in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            child = (*path, key)
            if isinstance(value, ScalarNode):
                if kinds.is_image_key(key):
                    found = kinds.image_string(self.ctx, value, child, area)
                    if found:
                        self._add(found, problem)
                continue
            if isinstance(value, SequenceNode):
                if key == "images" and self._kustomize_images(path, node, value, kind, api):
                    for entry in gitops.kustomize_images(self.ctx, value, child, area):
                        self._add(entry, problem)
                    continue
                if key == "parameters" and path[-1:] == ("helm",):
                    param_kind = area if area == "argocd-source" else "argocd-application"
                    for param in gitops.argocd_parameters(self.ctx, value, child, param_kind):
                        self._add(param, problem)
                    continue
            child_area = area
            if kind == "HelmRelease" and path == ("spec",) and key == "values":
                child_area = "helmrelease"
            elif key == "valuesObject" and path[-1:] == ("helm",) and area != "argocd-source":
                child_area = "argocd-application"
            self._visit(value, child, child_area, problem, kind, api)

    def _kustomize_images(
        self,
        path: YamlPath,
        parent: MappingNode,
        value: SequenceNode,
        kind: str | None,
        api: str | None,
    ) -> bool:
        if path == ():
            if kind in ("Kustomization", "Component") and (api or "").startswith("kustomize."):
                return True
            return kind is None and gitops.is_kustomize_images(value, parent)
        if path == ("spec",) and kind == "Kustomization":
            return True  # Flux Kustomization spec.images
        return path[-1:] == ("kustomize",)  # HelmRelease postRenderers[].kustomize.images

    def _add(self, found: Found, problem: str | None) -> None:
        if problem and not found.target.problem:
            found = Found(replace(found.target, problem=problem), found.nodes)
        self.found.append(found)

    def _finish(self, root: Node) -> list[Target]:
        if markers.has_markers(self.ctx.text, self.chunk.start, self.chunk.end):
            self._apply_markers(root)
        return [f.target for f in self.found]

    def _apply_markers(self, root: Node) -> None:
        text = self.ctx.text
        found_markers = [
            m for m in markers.find(text, self.chunk.start, self.chunk.end) if m.line >= 0
        ]
        if not found_markers:
            return
        lines = {m.line - self.chunk.line for m in found_markers}
        on_line: dict[int, list[tuple[ScalarNode, YamlPath, int]]] = {}
        self._scalars_on(root, (), lines, on_line, 0)
        owner = {node_id: i for i, f in enumerate(self.found) for node_id in f.nodes}
        groups: dict[
            tuple[int, str, str | None, int], list[tuple[markers.Marker, ScalarNode, YamlPath]]
        ] = {}
        for marker in found_markers:
            candidates = [
                c
                for c in on_line.get(marker.line - self.chunk.line, [])
                if self.chunk.start + c[0].end_mark.index <= marker.offset
            ]
            if not candidates:
                continue
            node, path, parent = max(candidates, key=lambda c: c[0].end_mark.index)
            if id(node) in owner:
                index = owner[id(node)]
                found = self.found[index]
                slots = found.target.slots
                if marker.part == "name" and found.target.slot("name") is None:
                    # kustomize "newName: ... # {"$imagepolicy": "ns:app:name"}": Flux writes
                    # the policy's image name there.
                    slots = (*slots, self.ctx.slot(node, "name", path))
                marked = replace(
                    found.target,
                    policy=marker.policy,
                    marker=marker.raw,
                    marker_namespace=marker.namespace,
                    slots=slots,
                )
                self.found[index] = Found(marked, found.nodes)
                continue
            # name/tag/digest markers of one policy in one mapping form one reference; a
            # whole-reference marker is one on its own.
            alone = marker.offset if marker.part == "ref" else -1
            key = (parent, marker.policy, marker.namespace, alone)
            groups.setdefault(key, []).append((marker, node, path))
        for members in groups.values():
            target = self._marker_target(members)
            if target is not None:
                self.found.append(Found(target))

    def _scalars_on(
        self,
        node: Node,
        path: YamlPath,
        lines: set[int],
        out: dict[int, list[tuple[ScalarNode, YamlPath, int]]],
        parent: int,
    ) -> None:
        if isinstance(node, ScalarNode):
            if node.end_mark.line in lines:
                out.setdefault(node.end_mark.line, []).append((node, path, parent))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self._scalars_on(item, (*path, index), lines, out, id(node))
        elif isinstance(node, MappingNode):
            for key, _, value in pairs(node):
                if key is not None:
                    self._scalars_on(value, (*path, key), lines, out, id(node))

    def _marker_target(
        self, members: list[tuple[markers.Marker, ScalarNode, YamlPath]]
    ) -> Target | None:
        slots: list[Slot] = []
        name_slots: list[Slot] = []
        repository = tag = digest = None
        problem = None
        for marker, node, path in members:
            value = scalar_value(node)
            if marker.part == "name":
                if is_templated(value):
                    problem = "templated value"
                    continue
                repository = kinds.normalised(value)
                # Flux writes the policy's image name here: a slot, not just a label.
                name_slots.append(self.ctx.slot(node, "name", path))
                continue
            role = marker.part
            if role == "ref" and _LOOKS_LIKE_TAG.match(value):
                role = "tag"  # "# imagebot: api" on "1.4.2": a bare version is a tag

            slots.append(self.ctx.slot(node, role, path))
            if is_templated(value):
                problem = "templated value"
            elif role == "ref":
                name, tag, digest = split_reference(value)
                repository = kinds.normalised(name)
                if repository is None:
                    problem = f"{value!r} is not an image reference"
            elif role == "tag":
                tag = value or None
            else:
                digest = value or None
        if not slots and not name_slots and repository is None:
            return None
        first_marker, first_node, first_path = members[0]
        line = slots[0].line if slots else self.ctx.line(first_node)
        return Target(
            source=self.ctx.source,
            line=line,
            kind="flux-setter" if first_marker.flux else "marker",
            field=format_path(slots[0].path if slots else first_path),
            repository=repository,
            policy=first_marker.policy,
            tag=tag,
            digest=digest,
            problem=problem,
            marker=first_marker.raw,
            marker_namespace=first_marker.namespace,
            slots=(*slots, *name_slots[:1]),
        )

"""The values that flow between locating and editing: targets, their spans, and edits."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

#: One step of a YAML path: a mapping key (as written) or a sequence index.
PathStep = str | int
YamlPath = tuple[PathStep, ...]


@dataclass(frozen=True)
class Slot:
    """One scalar of the file that holds (part of) a version, with its exact span."""

    role: str
    """``"ref"`` (a whole ``repo:tag@digest`` string), ``"tag"``, ``"digest"`` or ``"name"``
    (a scalar holding only the repository, marked ``:name``)."""
    start: int
    """Offset of the scalar's first character (a quote or block indicator included)."""
    end: int
    """Offset just past the scalar (closing quote included, comment excluded)."""
    raw: str
    """``text[start:end]`` when located; apply refuses to splice if the text differs."""
    style: str
    """``""`` plain, ``"'"``, ``'"'``, ``"|"`` or ``">"``."""
    value: str
    """The scalar's string value as YAML reads it (``""`` for a null)."""
    path: YamlPath
    """Where the scalar sits, for verification."""
    line: int
    """1-based line of the scalar."""
    hex_digest: bool = False
    """The field holds a bare hex digest (Helm charts' ``sha:`` fields) without ``sha256:``."""
    document: int = 0
    """Ordinal of the document within its ``---``-delimited chunk of the file."""
    alias: str = ""
    """For an Argo CD kustomize image string ``alias=repo:tag``: the ``alias=`` part, which
    stays as written (only the text after it is a reference)."""


@dataclass(frozen=True)
class KeyInsert:
    """Where a missing ``tag``/``newTag``/``digest`` key can be added to a mapping."""

    role: str
    """``"tag"`` or ``"digest"``."""
    key: str
    at: int
    """Offset the new text is inserted at."""
    prefix: str
    """Text before ``key: value``: a line break plus indentation, or ``", "`` in flow style."""
    mapping_path: YamlPath
    document: int = 0


@dataclass(frozen=True)
class KeyRemoval:
    """A whole ``digest: ...`` line that can be dropped when a digest is removed."""

    start: int
    end: int
    raw: str
    key: str
    mapping_path: YamlPath
    document: int = 0


@dataclass(frozen=True)
class Target:
    """One located image reference in one file."""

    source: str
    """File path as given, for messages."""
    line: int
    """1-based line of the scalar."""
    kind: str
    """``workload``, ``helm-values``, ``kustomization``, ``helmrelease``,
    ``argocd-application``, ``argocd-source``, ``compose``, ``marker`` or ``flux-setter``."""
    field: str
    """YAML path for messages, e.g. ``spec.template.spec.containers[0].image``."""
    repository: str | None
    """Docker-normalised repository; None when only a marker names the policy."""
    policy: str | None
    """Policy named by a ``# imagebot: <name>`` or Flux ``$imagepolicy`` marker, else None."""
    tag: str | None
    """Current tag written in the file."""
    digest: str | None
    """Current digest written in the file (always ``algorithm:hex``)."""
    problem: str | None = None
    """Why this reference cannot be edited safely (templated value, duplicate key), if so."""
    marker: str | None = dataclass_field(default=None, compare=False)
    """The marker as written (``flux-system:podinfo:tag``), if any."""
    marker_namespace: str | None = dataclass_field(default=None, compare=False)
    """The namespace a Flux marker names (``flux-system``); None for imagebot markers."""
    slots: tuple[Slot, ...] = dataclass_field(default=(), repr=False)
    inserts: tuple[KeyInsert, ...] = dataclass_field(default=(), repr=False)
    removal: KeyRemoval | None = dataclass_field(default=None, repr=False)

    def slot(self, role: str) -> Slot | None:
        """The slot playing ``role``, if the reference has one."""
        for slot in self.slots:
            if slot.role == role:
                return slot
        return None

    @property
    def digest_only(self) -> bool:
        """The file pins this image by digest alone: a digest field and no tag field (a
        ``:digest`` marker without a ``:tag`` sibling, a kustomize entry with ``digest:``
        and no ``newTag:``). Such a target takes a new digest and never gains a tag."""
        return (
            self.slot("digest") is not None
            and self.slot("tag") is None
            and self.slot("ref") is None
            and self.tag is None
        )

    def insert(self, role: str) -> KeyInsert | None:
        """Where a missing ``role`` key would go, if it can be added."""
        for insert in self.inserts:
            if insert.role == role:
                return insert
        return None


@dataclass(frozen=True)
class Edit:
    """Set the version of one target."""

    target: Target
    tag: str | None
    """New tag; None keeps the tag written in the file (or none, if there is none)."""
    digest: str | None
    """New digest (``sha256:...``); None removes a digest written in the file."""
    name: str | None = None
    """New repository name for a reference a marker owns whole, or for a ``:name`` field;
    None keeps the name written in the file."""

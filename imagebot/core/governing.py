"""Which policy entry governs each image reference: one rule (``Ownership``) for the plan,
history replay, promotion and status. Precedence for a reference (docs/policies.md):

1. a marker (``# imagebot: <name>``, Flux setters) names its entry;
2. an entry whose ``repository`` is exactly the target's repository (several may);
3. otherwise the entry with the most specific matching ``repository`` pattern — the most
   fixed characters, and on a tie the one listed first;
4. otherwise the environment's ``defaults``;
5. otherwise nothing: the reference is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from imagebot.core.policy import EnvironmentPolicy, ImagePolicy, ImageRule
from imagebot.core.rewrite import Target

#: (file path, target) in file order.
Placed = tuple[str, Target]


class Reference(Protocol):
    """What ownership reads of a reference: a located target or one replayed from history."""

    @property
    def policy(self) -> str | None: ...  # the entry a marker names
    @property
    def repository(self) -> str | None: ...  # normalised


@dataclass(frozen=True)
class Owner:
    """The entry that governs a reference."""

    image: str
    """Name in plans and commits: the entry's name, or the repository for a pattern or the
    defaults (one entry then stands for many images)."""
    repository: str
    """Normalised repository to scan."""
    display: str
    """The repository as the policy wrote it (exact entries) or normalised, for messages."""
    rule: ImageRule
    """The governing entry (an ``ImagePolicy``) or the environment's ``defaults``."""
    written_at: tuple[str | int, ...]
    """Where that rule is written in the policy file: ``("images", 3)`` or ``("defaults",)``."""
    entry: str
    """Which entry governs and why, e.g. ``images[acme] (pattern ghcr.io/acme/*)``."""


@dataclass(frozen=True)
class Governed(Owner):
    """The targets of one repository under the entry that governs them."""

    targets: tuple[Placed, ...] = ()

    @property
    def standing(self) -> Target:
        """The reference that stands for the image: the first by file and line."""
        return min(self.targets, key=lambda p: (p[0], p[1].line))[1]


@dataclass(frozen=True)
class Governance:
    groups: tuple[Governed, ...]
    unreferenced: tuple[ImagePolicy, ...]
    """Entries that govern no target in the environment's files."""


def locate_filter(policy: EnvironmentPolicy) -> frozenset[str] | None:
    """The repositories worth locating in files, or None when any reference may matter
    (a pattern entry or environment defaults)."""
    if policy.defaults is not None or any(i.pattern is not None for i in policy.images):
        return None
    return frozenset(i.normalized_repository for i in policy.images)


class Ownership:
    """The one rule (see the module's precedence) saying which entries own a reference, for
    the planner, history replay and status alike. Pattern matches are worked out once per
    repository, so the cost grows with references + entries, never their product."""

    def __init__(self, images: Iterable[ImagePolicy], defaults: ImageRule | None = None) -> None:
        self._named: dict[str, list[Owner]] = {}
        self._exact: dict[str, list[Owner]] = {}
        self._patterns: list[tuple[int, int, ImagePolicy]] = []  # (-specificity, index, entry)
        self._defaults = defaults
        self._resolved: dict[str, tuple[Owner, ...]] = {}
        self.entries = tuple(images)
        for index, image in enumerate(self.entries):
            if image.pattern is not None:
                self._patterns.append((-image.pattern.specificity, index, image))
                continue
            owner = Owner(
                image=image.name,
                repository=image.normalized_repository,
                display=image.repository,
                rule=image,
                written_at=("images", index),
                entry=f"images[{image.name}]",
            )
            self._named.setdefault(image.name, []).append(owner)
            self._exact.setdefault(owner.repository, []).append(owner)
        self._patterns.sort(key=lambda p: (p[0], p[1]))

    def owners(self, ref: Reference) -> tuple[Owner, ...]:
        """The entries owning ``ref``: those a marker names (Flux setters say
        ``namespace:name``), else those of its repository, else the most specific pattern,
        else the defaults; () when none does and the reference is left alone."""
        if ref.policy is not None:
            short = ref.policy.rsplit(":", 1)[-1]
            names = (ref.policy,) if short == ref.policy else (ref.policy, short)
            return tuple(o for name in names for o in self._named.get(name, ()))
        if ref.repository is None:
            return ()
        found = self._resolved.get(ref.repository)
        if found is None:
            found = self._resolved[ref.repository] = self._resolve(ref.repository)
        return found

    def _resolve(self, repository: str) -> tuple[Owner, ...]:
        if repository in self._exact:
            return tuple(self._exact[repository])
        winner = next(
            (i for _, _, i in self._patterns if i.pattern and i.pattern.matches(repository)), None
        )
        if winner is not None:
            index = self.entries.index(winner)
            rule: ImageRule = winner
            written: tuple[str | int, ...] = ("images", index)
            entry = f"images[{winner.name}] (pattern {winner.repository})"
        elif self._defaults is not None:
            rule, written, entry = self._defaults, ("defaults",), "defaults"
        else:
            return ()
        return (Owner(repository, repository, repository, rule, written, entry),)


def govern(policy: EnvironmentPolicy, targets: Mapping[str, Sequence[Target]]) -> Governance:
    """Group every target under the entry that governs it (see :class:`Ownership`): entries
    in policy order, then the repositories patterns or defaults govern, sorted."""
    ownership = Ownership(policy.images, policy.defaults)
    owners: dict[int, Owner] = {}  # owners are shared objects: one key per entry
    placed: dict[int, list[Placed]] = {}
    for path, found in targets.items():
        for t in found:
            for owner in ownership.owners(t):
                owners[id(owner)] = owner
                placed.setdefault(id(owner), []).append((path, t))

    def exact(o: Owner) -> bool:
        return isinstance(o.rule, ImagePolicy) and o.rule.pattern is None

    order = sorted(
        owners.values(), key=lambda o: (not exact(o), o.written_at if exact(o) else (), o.image)
    )
    groups = tuple(Governed(**vars(o), targets=tuple(placed[id(o)])) for o in order)
    used = {o.rule.name for o in order if isinstance(o.rule, ImagePolicy)}
    unreferenced = [i for i in policy.images if i.pattern is None and i.name not in used]
    unreferenced += [i for i in policy.images if i.pattern is not None and i.name not in used]
    return Governance(groups=groups, unreferenced=tuple(unreferenced))


def overlapping_patterns(policy: EnvironmentPolicy) -> list[tuple[ImagePolicy, ImagePolicy]]:
    """Pairs of pattern entries (in file order) that some repository matches both of."""
    entries = [i for i in policy.images if i.pattern is not None]
    return [
        (a, b)
        for n, a in enumerate(entries)
        for b in entries[n + 1 :]
        if a.pattern and b.pattern and a.pattern.overlaps(b.pattern)
    ]

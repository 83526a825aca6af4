"""Which policy entry governs each located target — computed once per environment read.

Targets are indexed by normalised repository (and markers by the entry they name) in one
pass; each entry then picks up its share by dictionary lookups, so the cost grows with
targets + entries, never their product. Precedence for a target (docs/policies.md):

1. a marker (``# imagebot: <name>``, Flux setters) names its entry;
2. an entry whose ``repository`` is exactly the target's repository (several may);
3. otherwise the entry with the most specific matching ``repository`` pattern — the most
   fixed characters, and on a tie the one listed first;
4. otherwise the environment's ``defaults``;
5. otherwise nothing: the reference is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from imagebot.core.policy import EnvironmentPolicy, ImagePolicy, ImageRule
from imagebot.core.rewrite import Target

#: (file path, target) in file order.
Placed = tuple[str, Target]


@dataclass(frozen=True)
class Governed:
    """The targets of one repository under the entry that governs them."""

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
    targets: tuple[Placed, ...]


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


def govern(policy: EnvironmentPolicy, targets: Mapping[str, Sequence[Target]]) -> Governance:
    """Group every target under the entry that governs it (see the module's precedence)."""
    by_repository: dict[str, list[tuple[int, Placed]]] = {}
    by_marker: dict[str, list[tuple[int, Placed]]] = {}
    ordinal = 0
    for path, found in targets.items():
        for t in found:
            ordinal += 1
            if t.policy is not None:
                by_marker.setdefault(t.policy, []).append((ordinal, (path, t)))
                short = t.policy.rsplit(":", 1)[-1]  # Flux setters say "namespace:name"
                if short != t.policy:
                    by_marker.setdefault(short, []).append((ordinal, (path, t)))
            elif t.repository is not None:
                by_repository.setdefault(t.repository, []).append((ordinal, (path, t)))

    groups: list[Governed] = []
    unreferenced: list[ImagePolicy] = []
    patterns: list[tuple[int, int, ImagePolicy]] = []  # (-specificity, index, entry)
    exact: set[str] = set()
    for index, image in enumerate(policy.images):
        if image.pattern is not None:
            patterns.append((-image.pattern.specificity, index, image))
            continue
        repository = image.normalized_repository
        exact.add(repository)
        marked = by_marker.get(image.name, [])
        plain = by_repository.get(repository, [])
        placed = sorted(marked + plain) if marked and plain else marked or plain
        if not placed:
            unreferenced.append(image)
            continue
        groups.append(
            Governed(
                image=image.name,
                repository=repository,
                display=image.repository,
                rule=image,
                written_at=("images", index),
                entry=f"images[{image.name}]",
                targets=tuple(p for _, p in placed),
            )
        )

    patterns.sort(key=lambda p: (p[0], p[1]))
    used: set[str] = set()
    for repository in sorted(by_repository.keys() - exact):
        winner = next(
            (i for _, _, i in patterns if i.pattern and i.pattern.matches(repository)), None
        )
        written_at: tuple[str | int, ...]
        if winner is not None:
            used.add(winner.name)
            rule: ImageRule = winner
            written_at = ("images", policy.images.index(winner))
            entry = f"images[{winner.name}] (pattern {winner.repository})"
        elif policy.defaults is not None:
            rule, written_at, entry = policy.defaults, ("defaults",), "defaults"
        else:
            continue
        groups.append(
            Governed(
                image=repository,
                repository=repository,
                display=repository,
                rule=rule,
                written_at=written_at,
                entry=entry,
                targets=tuple(p for _, p in by_repository[repository]),
            )
        )
    unreferenced.extend(i for _, _, i in sorted(patterns, key=lambda p: p[1]) if i.name not in used)
    return Governance(groups=tuple(groups), unreferenced=tuple(unreferenced))


def overlapping_patterns(policy: EnvironmentPolicy) -> list[tuple[ImagePolicy, ImagePolicy]]:
    """Pairs of pattern entries (in file order) that some repository matches both of."""
    entries = [i for i in policy.images if i.pattern is not None]
    return [
        (a, b)
        for n, a in enumerate(entries)
        for b in entries[n + 1 :]
        if a.pattern and b.pattern and a.pattern.overlaps(b.pattern)
    ]

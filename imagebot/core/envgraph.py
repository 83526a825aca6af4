"""The environment graph: which environment promotes from which, checked and ordered.

Pure: takes loaded policies, returns them upstream first and every problem of the graph
at the file and line of the field to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from imagebot.core.policy import LoadedPolicy


def order_environments(
    policies: Sequence[LoadedPolicy],
    catalog: Sequence[LoadedPolicy] = (),
    *,
    broken: Mapping[str, str] = {},
) -> tuple[list[LoadedPolicy], list[str]]:
    """``policies`` with every upstream before its downstreams, and the problems of the
    graph: an unknown ``from``, a cycle, an image with no upstream entry. Environments in a
    cycle or promoting from an unknown one are left out; the others keep their file order.
    ``catalog`` (default: ``policies``) is every environment an upstream may be; ``broken``
    names the environments whose file did not load, with the file."""
    known = {p.name: p for p in (catalog or policies)}
    known.update({p.name: p for p in policies})
    problems: list[str] = []
    bad: set[str] = set()
    for p in policies:
        promote = p.policy.promote
        if promote is None:
            continue
        up = known.get(promote.from_)
        if up is None and promote.from_ in broken:
            problems.append(
                f"{p.at('promote.from')}: promote.from: environment {promote.from_!r} did not"
                f" load ({broken[promote.from_]} has errors); {p.name} waits until it does"
            )
            bad.add(p.name)
            continue
        if up is None:
            problems.append(
                f"{p.at('promote.from')}: promote.from: unknown environment {promote.from_!r}"
                f" (known: {', '.join(sorted(known)) or 'none'})"
            )
            bad.add(p.name)
            continue
        for i, image in enumerate(p.policy.images):
            if up.policy.image(image.name) is None:
                problems.append(
                    f"{p.at(f'images[{i}]')}: images[{i}]: image {image.name!r} has no entry of"
                    f" the same name in upstream environment {up.name!r} ({up.source})"
                )
    for p in policies:
        seen = [p.name]
        promote = p.policy.promote
        while promote is not None and promote.from_ in known:
            if promote.from_ in seen:
                loop = [*seen[seen.index(promote.from_) :], promote.from_]
                if p.name in loop:
                    problems.append(
                        f"{p.at('promote.from')}: promote.from: environments promote from"
                        f" each other in a cycle: {' -> '.join(reversed(loop))}"
                    )
                    bad.add(p.name)
                break
            seen.append(promote.from_)
            promote = known[promote.from_].policy.promote
    ordered: list[LoadedPolicy] = []
    placed: set[str] = set()
    pending = [p for p in policies if p.name not in bad]
    names = {p.name for p in pending}
    while pending:
        for p in pending:
            source = p.policy.promote.from_ if p.policy.promote else None
            if source is None or source not in names or source in placed:
                ordered.append(p)
                placed.add(p.name)
                pending.remove(p)
                break
        else:  # pragma: no cover - cycles were removed above
            ordered.extend(pending)
            break
    return ordered, problems

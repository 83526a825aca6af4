"""What a pull request says: title, body (a table of changes with source links) and the
machine-readable record of what it proposes. Pure: the publisher feeds it and sends it.

The record is an HTML comment at the end of the body (invisible on every forge), so what a
closed pull request proposed is read back from the forge alone, never from local state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from imagebot.core.plan import Change, EnvironmentPlan
from imagebot.core.publish_policy import PublishSpec

#: (repository, old version, new version) -> compare or commit URL of the source change
LinkKey = tuple[str, str, str]

_RECORD = re.compile(r"<!-- imagebot-proposal: (\{.*?\}) -->")
#: Added to the body of a pull request imagebot closed because the base already held it.
OBSOLETE_MARKER = "<!-- imagebot: closed as obsolete -->"
#: Starts the one comment imagebot leaves when a human pushed to its branch.
HUMAN_COMMIT_MARKER = "<!-- imagebot: human commits -->"

DEFAULT_BODY = """\
imagebot proposes {summary} in environment **{environment}**.

{table}

This pull request is kept up to date by imagebot: a newer version updates it in place.
Close it to decline these versions; imagebot proposes again only when a newer one exists.
Push your own commits to `{branch}` and imagebot stops updating it until it is merged or closed.
"""


@dataclass(frozen=True)
class Transition:
    """One image moving from one version to another, in one or more places."""

    image: str
    repository: str
    old: str
    new: str
    digest: str | None
    reason: str
    changes: tuple[Change, ...]

    @property
    def key(self) -> LinkKey:
        return (self.repository, self.old, self.new)


def transitions(plan: EnvironmentPlan) -> list[Transition]:
    groups: dict[tuple[str, str, str, str | None], list[Change]] = {}
    for c in plan.changes:
        groups.setdefault((c.image, c.old, c.new, c.image_digest), []).append(c)
    return [
        Transition(image, g[0].repository, old, new, digest, g[0].reason, tuple(g))
        for (image, old, new, digest), g in groups.items()
    ]


def summary(plan: EnvironmentPlan) -> str:
    moves = transitions(plan)
    if len(moves) == 1:
        t = moves[0]
        return f"update {t.image} {t.old} -> {t.new}"
    names = sorted({t.image for t in moves})
    return f"update {len(names)} images: {', '.join(names)}"


def compare_url(source: str, old_revision: str | None, new_revision: str) -> str:
    """A web link to the source change: compare old...new, or the new commit alone.

    ``source`` is the ``org.opencontainers.image.source`` annotation (a repository URL, maybe
    scp-like or ending in .git). GitLab puts its pages under ``/-/``; GitHub, Gitea and
    Forgejo share ``/compare/a...b`` and ``/commit/sha``.
    """
    url = source.strip().removesuffix("/").removesuffix(".git")
    scp = re.match(r"^[^/@\s]+@([^/:\s]+):(.+)$", url)
    if scp:
        url = f"https://{scp[1]}/{scp[2]}"
    url = re.sub(r"^(ssh|git)://([^@/]+@)?", "https://", url.removeprefix("git+"))
    sep = "/-/" if "gitlab" in (urlsplit(url).hostname or "") else "/"
    if old_revision and old_revision != new_revision:
        return f"{url}{sep}compare/{old_revision}...{new_revision}"
    return f"{url}{sep}commit/{new_revision}"


def table(plan: EnvironmentPlan, links: Mapping[LinkKey, str]) -> str:
    rows = [
        "| Image | From | To | Digest | Why | Source |",
        "|---|---|---|---|---|---|",
    ]
    for t in transitions(plan):
        link = links.get(t.key)
        rows.append(
            "| "
            + " | ".join(
                [
                    f"`{t.image}` ({_cell(t.repository)})",
                    f"`{_cell(t.old)}`",
                    f"`{_cell(t.new)}`",
                    f"`{t.digest}`" if t.digest else "",
                    _cell(t.reason),
                    f"[changes]({link})" if link else "",
                ]
            )
            + " |"
        )
    return "\n".join(rows)


def title(spec: PublishSpec, plan: EnvironmentPlan, *, branch: str, base: str) -> str:
    return spec.title.format(
        environment=plan.environment, summary=summary(plan), branch=branch, base=base
    )


def body(
    spec: PublishSpec,
    plan: EnvironmentPlan,
    *,
    branch: str,
    base: str,
    links: Mapping[LinkKey, str],
) -> str:
    text = (spec.body or DEFAULT_BODY).format(
        environment=plan.environment,
        summary=summary(plan),
        branch=branch,
        base=base,
        table=table(plan, links),
    )
    return text.rstrip("\n") + "\n\n" + record(plan) + "\n"


def record(plan: EnvironmentPlan) -> str:
    """The hidden record of what ``plan`` proposes: repository -> new versions."""
    proposed: dict[str, list[str]] = {}
    for t in transitions(plan):
        proposed.setdefault(t.repository, []).append(t.new)
    return f"<!-- imagebot-proposal: {json.dumps(proposed, sort_keys=True)} -->"


def proposal(plan: EnvironmentPlan) -> frozenset[tuple[str, str]]:
    """(repository, new version) of every transition in ``plan``."""
    return frozenset((t.repository, t.new) for t in transitions(plan))


def proposed_in(pr_body: str) -> frozenset[tuple[str, str]]:
    """What a pull request body imagebot wrote proposed; empty for any other body."""
    match = _RECORD.search(pr_body)
    if match is None:
        return frozenset()
    try:
        data = json.loads(match[1])
    except ValueError:
        return frozenset()
    if not isinstance(data, dict):
        return frozenset()
    return frozenset(
        (str(repo), str(v)) for repo, vs in data.items() if isinstance(vs, list) for v in vs
    )


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())

"""A plan: the changes one cycle would make, as plain data — printable, testable, pure.

``plan_environment`` takes an environment's policy, its files' text, and what the
registries said, and returns the edits, the new file texts and every problem found; it
never does I/O. The engine feeds it and publishes the result.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from imagebot.core.governing import Governance, Governed, govern
from imagebot.core.policy import EnvironmentPolicy, ImagePolicy, ImageRule, rule_field_path
from imagebot.core.reference import normalize_repository
from imagebot.core.rewrite import Edit, Target
from imagebot.core.rewrite import apply as apply_edits
from imagebot.core.rewrite.scalars import split_reference
from imagebot.core.selection import (
    Decision,
    Rejection,
    SelectionRule,
    TagInfo,
    compile_rule,
    select,
)
from imagebot.core.selection import ImageScan as ImageScan  # re-exported: its first home
from imagebot.core.selectmemo import SelectionMemo
from imagebot.core.yamldoc import dotted, line_at
from imagebot.errors import EditError, InvalidReference, SelectionError

TRAILER_ENVIRONMENT = "Imagebot-Environment"
TRAILER_IMAGE = "Imagebot-Image"
TRAILER_FROM = "Imagebot-From"
TRAILER_TO = "Imagebot-To"
TRAILER_DIGEST = "Imagebot-Digest"
TRAILER_PROMOTED_FROM = "Imagebot-Promoted-From"
TRAILER_VERIFIED = "Imagebot-Verified"


@dataclass(frozen=True)
class Change:
    """One target moving from one version to another."""

    environment: str
    image: str  # image policy name
    repository: str  # normalised
    file: str
    line: int
    field: str
    kind: str
    old_tag: str | None
    old_digest: str | None
    new_tag: str | None
    new_digest: str | None  # the digest written into the file, if any
    image_digest: str | None  # the digest of the new version, written or not (for trailers)
    reason: str
    #: the repository written in place of another one a marker owns (``old/name:1.0.0``
    #: becoming ``ghcr.io/acme/app:1.0.1``), or a ``:name`` field set; None when unchanged
    new_name: str | None = None

    @property
    def old(self) -> str:
        return version_text(self.old_tag, self.old_digest)

    @property
    def new(self) -> str:
        return version_text(self.new_tag, self.new_digest)

    def summary(self) -> str:
        renamed = f" (name written: {self.new_name})" if self.new_name else ""
        return (
            f"{self.environment}: {self.image} ({self.repository}) {self.old} -> {self.new}"
            f"{renamed}  [{self.file}:{self.line}]"
        )


@dataclass(frozen=True)
class EnvironmentPlan:
    environment: str
    source: str  # policy file
    changes: tuple[Change, ...] = ()
    problems: tuple[str, ...] = ()
    decisions: tuple[tuple[str, str | None, Decision], ...] = ()  # (image, current, decision)
    old_files: Mapping[str, str] = field(default_factory=dict)
    new_files: Mapping[str, str] = field(default_factory=dict)
    #: (repository, tag) of chosen versions whose digest the scan did not hold yet
    digests_needed: frozenset[tuple[str, str]] = frozenset()
    #: image -> "<environment>@<commit>": the upstream commit a promoted version ran in
    promoted_from: Mapping[str, str] = field(default_factory=dict)
    #: (repository, tag) of new versions whose digest only the commit trailers and JSON
    #: output record; a text plan does without them
    trailer_digests: frozenset[tuple[str, str]] = frozenset()
    #: every governed repository with the entry governing it and its targets (--explain)
    governed: tuple[Governed, ...] = ()
    #: image -> what its new version was verified with ("key cosign.pub"): the verify gate
    verified: Mapping[str, str] = field(default_factory=dict)
    #: image -> the versions the verify gate refused, newest first, with the reason
    refused: Mapping[str, Mapping[str, Rejection]] = field(default_factory=dict)

    def diff(self) -> str:
        """A unified diff of every changed file, with a/ and b/ prefixes like git's."""
        out: list[str] = []
        for path in sorted(self.new_files):
            out.extend(
                difflib.unified_diff(
                    self.old_files[path].splitlines(keepends=True),
                    self.new_files[path].splitlines(keepends=True),
                    fromfile=f"a/{path}",
                    tofile=f"b/{path}",
                )
            )
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def version_text(tag: str | None, digest: str | None) -> str:
    if tag and digest:
        return f"{tag}@{digest}"
    return tag or digest or "(none)"


def in_scope(policy: EnvironmentPolicy, targets: Sequence[Target]) -> list[Target]:
    """The targets an environment edits at all: with ``detect: markers`` only marked ones
    (as Flux does); with ``marker_namespace`` set, Flux markers of other namespaces are
    another environment's and are left alone."""
    out = list(targets)
    if policy.detect == "markers":
        out = [t for t in out if t.policy is not None]
    if policy.marker_namespace is not None:
        out = [
            t
            for t in out
            if t.marker_namespace is None or t.marker_namespace == policy.marker_namespace
        ]
    return out


def name_to_write(image: ImagePolicy, target: Target) -> str | None:
    """The policy's repository when a marker owns a reference (or a ``:name`` field) that
    names another repository: Flux writes the policy's image there, and a tag of one
    repository must never be written onto another's name. None when the name stays."""
    if target.policy is None:
        return None
    slot = target.slot("ref") or target.slot("name")
    if slot is None:
        return None
    value = slot.value[len(slot.alias) :]
    written = split_reference(value)[0] if slot.role == "ref" else value
    try:
        same = normalize_repository(written) == image.normalized_repository
    except InvalidReference:
        same = False
    return None if same else image.repository


def needs_digest(image: ImageRule, target: Target) -> bool:
    """Pin when the policy says so, follows digests, or the file already pins (a tag moved
    without its digest would keep running the old image) or holds only a digest field."""
    return (
        image.digest == "pin"
        or compile_rule(image.rule()).needs_digest
        or target.digest is not None
        or target.digest_only
    )


def plan_environment(
    policy: EnvironmentPolicy,
    *,
    source: str,
    files: Mapping[str, str],
    targets: Mapping[str, Sequence[Target]],
    scans: Mapping[str, ImageScan],
    now: datetime,
    problems: Sequence[str] = (),
    lines: Mapping[str, int] | None = None,
    governance: Governance | None = None,
    memo: SelectionMemo | None = None,
) -> EnvironmentPlan:
    """Decide every target's version and splice the edits into the files' text.

    ``lines`` maps policy fields (``images[0].follow``) to their line in ``source``, so an
    image whose rule fails names the field; the other images are still planned.
    ``governance`` is :func:`~imagebot.core.governing.govern` over ``targets`` when the
    caller has it; ``memo`` keeps decisions between plans (the engine plans again once the
    digests a plan asked for are fetched, and selects only what changed)."""
    lines = lines or {}
    memo = memo or SelectionMemo()
    env = policy.environment
    if governance is None:
        governance = govern(policy, {p: in_scope(policy, ts) for p, ts in targets.items()})
    all_problems = list(problems)
    decisions: list[tuple[str, str | None, Decision]] = []
    edits: dict[str, list[Edit]] = {}
    changes: dict[str, list[Change]] = {}
    needed: set[tuple[str, str]] = set()
    trailer: set[tuple[str, str]] = set()
    for g in governance.groups:
        image = g.rule
        repository = g.repository
        scan = scans.get(repository)
        if scan is None or scan.error is not None:
            reason = scan.error if scan else "not scanned"
            all_problems.append(f"{env}: image {g.image} ({g.display}): {reason}")
            continue
        rule = image.rule()
        digest_version = compile_rule(rule).needs_digest
        tags = scan.tags
        if digest_version:  # the version is the followed tag's digest, as the scan found it
            tags = tuple(replace(t, digest=scan.digests.get(t.name, t.digest)) for t in tags)
        by_current: dict[str | None, Decision] = {}
        for path, target in g.targets:
            new_name = name_to_write(image, target) if isinstance(image, ImagePolicy) else None
            # The tag of another repository says nothing about where this one stands.
            current = None if new_name is not None else target.tag
            follow = rule.follow or current
            if digest_version and follow is not None and follow not in scan.digests:
                needed.add((repository, follow))
            try:
                # Pinned by digest alone: which version is that? (A field a marker gives to
                # the policy is written as the policy says, as Flux does.)
                unmarked = current is None and new_name is None and target.policy is None
                pinned = target.digest if unmarked else None
                if pinned is not None and not digest_version:
                    current = _tag_of_digest(rule, repository, pinned, tags, scan, needed, now)
                    if current is None:  # not knowing the running version, stay on it
                        why = "no tag imagebot checked carries this digest; it stays"
                        decisions.append((g.image, pinned, Decision(None, why, ())))
                        continue
                if current not in by_current:
                    by_current[current] = memo.select(repository, scan, tags, rule, current, now)
                    decisions.append((g.image, current, by_current[current]))
            except SelectionError as exc:  # this image's rule fails; the others are planned
                field = dotted((*g.written_at, *rule_field_path(exc.field)))
                line = line_at(lines, field)
                at = f"{source}:{line}" if line is not None else source
                all_problems.append(f"{env}: image {g.image}: {at}: {field}: {exc}")
                break
            decision = by_current[current]
            if decision.tag is None or decision.tag == current != target.tag:
                continue  # nothing qualifies, or a digest-only pin that is still the choice
            pin = needs_digest(image, target)
            if decision.tag not in scan.digests:
                if pin:
                    needed.add((repository, decision.tag))
                elif decision.tag != target.tag:
                    trailer.add((repository, decision.tag))
            new_digest = None
            if pin:
                new_digest = scan.digests.get(decision.tag)
                if new_digest is None:
                    all_problems.append(
                        f"{env}: {path}:{target.line}: no digest known for"
                        f" {g.display}:{decision.tag}; left unchanged"
                    )
                    continue
            if target.digest_only and new_digest is not None:
                if new_digest == target.digest and new_name is None:
                    continue  # pinned by digest alone: the digest is the whole version
            elif (decision.tag, new_digest) == (target.tag, target.digest) and new_name is None:
                continue
            reason = decision.reason
            if new_name is not None:
                reason += f"; the marker owns the whole reference: name set to {new_name}"
            edits.setdefault(path, []).append(
                Edit(target=target, tag=decision.tag, digest=new_digest, name=new_name)
            )
            changes.setdefault(path, []).append(
                Change(
                    environment=env,
                    image=g.image,
                    repository=repository,
                    file=path,
                    line=target.line,
                    field=target.field,
                    kind=target.kind,
                    old_tag=target.tag,
                    old_digest=target.digest,
                    new_tag=decision.tag,
                    new_digest=new_digest,
                    image_digest=new_digest or scan.digests.get(decision.tag),
                    reason=reason,
                    new_name=new_name,
                )
            )
    new_files: dict[str, str] = {}
    kept: list[Change] = []
    for path in sorted(edits):
        try:
            new_files[path] = apply_edits(files[path], edits[path], source=path)
        except EditError as exc:
            all_problems.append(f"{env}: {exc}; file left untouched")
            continue
        kept.extend(changes[path])
    return EnvironmentPlan(
        environment=env,
        source=source,
        changes=tuple(kept),
        problems=tuple(all_problems),
        decisions=tuple(decisions),
        old_files={p: files[p] for p in new_files},
        new_files=new_files,
        digests_needed=frozenset(needed),
        trailer_digests=frozenset(trailer),
        governed=governance.groups,
    )


#: Digests asked for when a file pins an image by digest alone: the candidates' digests show
#: which tag the running image is. More candidates than this are not resolved.
DIGEST_LOOKUPS = 50


def _tag_of_digest(
    rule: SelectionRule,
    repository: str,
    digest: str,
    tags: Sequence[TagInfo],
    scan: ImageScan,
    needed: set[tuple[str, str]],
    now: datetime,
) -> str | None:
    """The tag a digest-only reference runs: among the tags carrying ``digest``, the one the
    rule ranks highest. None while unknown; the digests of the rule's candidates are then
    asked for (``needed``), so the next plan of this cycle can tell."""
    carriers = sorted(t for t, d in scan.digests.items() if d == digest)
    if carriers:
        ranked = select(carriers, replace(rule, downgrade=True), now=now).tag
        return ranked or carriers[0]
    accepted = [v.tag for v in select(tags, rule, now=now).verdicts if v.accepted]
    needed.update((repository, t) for t in accepted[:DIGEST_LOOKUPS])
    return None


def commit_message(
    plan: EnvironmentPlan, *, links: Mapping[tuple[str, str, str], str] | None = None
) -> str:
    """Subject, a readable body, and trailers that record every transition; ``links`` maps
    (repository, old, new) to the source change's URL."""
    env = plan.environment
    transitions: dict[tuple[str, str, str, str | None], list[Change]] = {}
    for c in plan.changes:
        transitions.setdefault((c.image, c.old, c.new, c.image_digest), []).append(c)
    if len(transitions) == 1:
        image, old, new, _ = next(iter(transitions))
        subject = f"imagebot({env}): update {image} {old} -> {new}"
    else:
        names = sorted({key[0] for key in transitions})
        subject = f"imagebot({env}): update {len(names)} images: {', '.join(names)}"
    body = [f"imagebot updated environment {env} (policy {plan.source}):", ""]
    trailers = [f"{TRAILER_ENVIRONMENT}: {env}"]
    for (image, old, new, digest), group in transitions.items():
        first = group[0]
        body.append(f"- {image} ({first.repository}): {old} -> {new}")
        body.append(f"  why: {first.reason}")
        if links and (link := links.get((first.repository, old, new))):
            body.append(f"  source: {link}")
        body.extend(f"  {c.file}:{c.line} {c.field}" for c in group)
        trailers.append(f"{TRAILER_IMAGE}: {first.repository}")
        trailers.append(f"{TRAILER_FROM}: {old}")
        trailers.append(f"{TRAILER_TO}: {new}")
        if digest:
            trailers.append(f"{TRAILER_DIGEST}: {digest}")
        if image in plan.promoted_from:
            trailers.append(f"{TRAILER_PROMOTED_FROM}: {plan.promoted_from[image]}")
        if image in plan.verified:
            trailers.append(f"{TRAILER_VERIFIED}: {plan.verified[image]}")
    return "\n".join([subject, "", *body, "", *trailers]) + "\n"

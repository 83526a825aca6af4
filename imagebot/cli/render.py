"""What the cycle commands print: a cycle's result as text or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from imagebot.core.governing import Governed
from imagebot.core.plan import Change, EnvironmentPlan
from imagebot.core.selection import Decision, Verdict, explain_lines
from imagebot.engine import CycleResult
from imagebot.registry.tags import newness


def change_json(c: Change) -> dict[str, Any]:
    return {
        "environment": c.environment,
        "image": c.image,
        "repository": c.repository,
        "file": c.file,
        "line": c.line,
        "field": c.field,
        "kind": c.kind,
        "from": {"tag": c.old_tag, "digest": c.old_digest},
        "to": {"tag": c.new_tag, "digest": c.new_digest},
        "image_digest": c.image_digest,
        "reason": c.reason,
    }


def by_version(verdicts: Sequence[Verdict]) -> tuple[Verdict, ...]:
    """Verdicts oldest to newest by version (other tags first, in natural order): registries
    list tags in whatever order they keep them."""
    return tuple(sorted(verdicts, key=lambda v: newness(v.tag)))


def with_refused(plan: EnvironmentPlan, image: str, d: Decision) -> Decision:
    """``d`` with the versions the verify gate refused (planned again without them), oldest
    to newest by version."""
    refused = plan.refused.get(image, {})
    extra = [Verdict(tag, False, r.reason, r) for tag, r in refused.items()]
    return replace(d, verdicts=by_version([*d.verdicts, *extra]))


def plan_json(plan: EnvironmentPlan, *, explain: bool = False) -> dict[str, Any]:
    """A plan as JSON; with ``explain``, every tag's verdict under each decision."""
    return {
        "environment": plan.environment,
        "policy": plan.source,
        "changes": [change_json(c) for c in plan.changes],
        "decisions": [
            {
                "image": image,
                "current": current,
                "chosen": d.tag,
                "reason": d.reason,
                "verified": plan.verified.get(image) if d.tag != current else None,
                **(
                    {
                        "verdicts": [
                            {"tag": v.tag, "accepted": v.accepted, "reason": v.reason}
                            | (
                                {"gate": v.rejection.gate, "data": dict(v.rejection.data or {})}
                                if v.rejection is not None
                                else {}
                            )
                            for v in with_refused(plan, image, d).verdicts
                        ]
                    }
                    if explain
                    else {}
                ),
            }
            for image, current, d in plan.decisions
        ],
        "problems": list(plan.problems),
        "diff": plan.diff(),
        **({"governed": [governed_json(g) for g in plan.governed]} if explain else {}),
    }


def governed_json(g: Governed) -> dict[str, Any]:
    return {
        "image": g.image,
        "repository": g.repository,
        "entry": g.entry,
        "targets": [{"file": path, "line": t.line, "field": t.field} for path, t in g.targets],
    }


def print_result(
    result: CycleResult, *, output: str, published: bool, explain: bool = False
) -> None:
    if output == "json":
        doc = {
            "ok": result.ok,
            "problems": list(result.problems),
            "environments": [
                {
                    **plan_json(r.plan, explain=explain),
                    "commit": r.commit,
                    "publication": r.publication,
                    "error": r.error,
                    "images": [record.to_json() for record in r.images],
                }
                for r in result.environments
            ],
        }
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    out = sys.stdout
    for problem in result.problems:
        out.write(f"error: {problem}\n")
    for r in result.environments:
        plan = r.plan
        out.write(plan.diff())
        for c in plan.changes:
            out.write(f"{c.summary()}\n    why: {c.reason}\n")
        if explain:
            for g in plan.governed:
                out.write(f"{plan.environment}: {g.repository} governed by {g.entry}:\n")
                out.writelines(f"    {path}:{t.line} {t.field}\n" for path, t in g.targets)
            for image, current, d in plan.decisions:
                out.write(f"{plan.environment}: {image} (running {current or 'no tag'}):\n")
                ordered = with_refused(plan, image, d)
                out.writelines(f"    {line}\n" for line in explain_lines(ordered))
        waiting = {i.image: i.blocker for i in r.images if i.blocker and not i.choice}
        for image, current, d in plan.decisions:
            if d.tag is None or d.tag == current or image in waiting:
                why = f"waiting: {waiting[image]}" if image in waiting else d.reason
                out.write(f"{plan.environment}: {image} stays at {current or '(none)'}: {why}\n")
        for problem in plan.problems:
            out.write(f"error: {problem}\n")
        if r.error:
            out.write(f"error: {r.error}\n")
        if r.publication:
            out.write(f"{plan.environment}: {r.publication}\n")
        if r.commit:
            out.write(f"{plan.environment}: pushed {r.commit}\n")
        elif not plan.changes and not r.error and not plan.problems:
            out.write(f"{plan.environment}: up to date\n")
        elif plan.changes and not published and not r.error:
            out.write(f"{plan.environment}: {len(plan.changes)} change(s) planned\n")

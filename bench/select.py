"""Benchmark: choosing from 100,000 tags must take at most 100 ms (issue 4).

The tag list imitates a busy repository: releases, ``v``-prefixed releases, release
candidates, ``-alpine`` variants, CI commit tags (``sha-…``), partial tags and mutable tags.

Two figures per scenario, each the best of several runs (the run least disturbed by other
processes on this shared machine), in CPU time of this process (``time.process_time``). The
runs of all scenarios are interleaved, round after round, so that each scenario's best is
drawn from the whole length of the benchmark rather than from one busy stretch of it: the
same trivial loop takes anything from 8 to 20 ms here from one second to the next.

- cold: the first time these tags are seen (``clear_caches()`` first: every tag read, every
  pattern run) -- the figure judged against the budget;
- warm: a later cycle over the same list, as the daemon sees it (readings remembered).

A calibration line times a trivial pass over the same list, and the load average is printed,
so the figures can be read against how busy the machine was. Exit status 1 if a cold figure
exceeds the budget.

Run from the repository root: ``python bench/select.py``
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagebot.core.selection import (
    SelectionRule,
    clear_caches,
    explain_lines,
    select,
)

BUDGET_MS = 100.0
N_TAGS = 100_000
RUNS = 21


def make_tags(n: int, seed: int = 4) -> list[str]:
    rng = random.Random(seed)
    tags: set[str] = {"latest", "stable", "edge", "main"}
    while len(tags) < n:
        major, minor, patch = rng.randint(0, 40), rng.randint(0, 60), rng.randint(0, 40)
        kind = rng.random()
        if kind < 0.45:
            tags.add(f"{major}.{minor}.{patch}")
        elif kind < 0.55:
            tags.add(f"v{major}.{minor}.{patch}")
        elif kind < 0.70:
            tags.add(f"{major}.{minor}.{patch}-rc.{rng.randint(0, 12)}")
        elif kind < 0.85:
            tags.add(f"{major}.{minor}.{patch}-alpine")
        elif kind < 0.97:
            tags.add(f"sha-{rng.getrandbits(28):07x}")
        else:
            tags.add(f"{major}.{minor}")
    out = sorted(tags)
    rng.shuffle(out)
    return out


def timed_ms(fn: Callable[[], object], *, before: Callable[[], None] = lambda: None) -> float:
    before()
    start = time.process_time()
    fn()
    return (time.process_time() - start) * 1000


SCENARIOS: list[tuple[str, SelectionRule, str | None]] = [
    ("semver ^20", SelectionRule(range="^20"), None),
    (
        "semver >=10 <30, prereleases, current 12.3.4",
        SelectionRule(range=">=10 <30", prerelease=True),
        "12.3.4",
    ),
    ("semver, allow minor, current 7.1.0-alpine", SelectionRule(allow="minor"), "7.1.0-alpine"),
    (
        "semver, include + exclude regexes",
        SelectionRule(include=r"^\d+\.\d+\.\d+$", exclude=(r"^0\.",)),
        None,
    ),
    (
        "numeric over extract (include groups)",
        SelectionRule(strategy="numeric", include=r"^(?P<major>\d+)\.\d+\.\d+$", extract="$major"),
        None,
    ),
    ("lexical", SelectionRule(strategy="lexical"), None),
]


def main() -> int:
    tags = make_tags(N_TAGS)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"choosing from {len(tags):,} tags; best of {RUNS} interleaved runs, CPU time")
    print(f"  budget {BUDGET_MS:.0f} ms, judged on the cold figure")
    runs = {label: _runner(tags, rule, current) for label, rule, current in SCENARIOS}
    explain_rule = SelectionRule(range="^20")
    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    calibration = explain = float("inf")
    for _ in range(RUNS):
        calibration = min(calibration, timed_ms(lambda: [t.startswith("sha") for t in tags]))
        for label, run in runs.items():
            cold[label] = min(cold.get(label, float("inf")), timed_ms(run, before=clear_caches))
            warm[label] = min(warm.get(label, float("inf")), timed_ms(run))
        explain = min(explain, timed_ms(lambda: explain_lines(select(tags, explain_rule))))
    print(f"  load average {load}; one trivial pass over the list takes {calibration:.1f} ms")
    print(f"  {'scenario':<50} {'cold':>9} {'warm':>9}  budget  chosen")
    over = []
    for label, rule, current in SCENARIOS:
        chosen = select(tags, rule, current=current).tag
        verdict = "ok" if cold[label] <= BUDGET_MS else "OVER"
        if verdict == "OVER":
            over.append(label)
        print(f"  {label:<50} {cold[label]:6.1f} ms {warm[label]:6.1f} ms  {verdict:<6}  {chosen}")
    print(f"  {'semver ^20 + all 100,000 explanation lines':<50} {'':>9} {explain:6.1f} ms")
    print("cold within budget" if not over else f"COLD OVER BUDGET: {'; '.join(over)}")
    return 1 if over else 0


def _runner(tags: list[str], rule: SelectionRule, current: str | None) -> Callable[[], object]:
    return lambda: select(tags, rule, current=current).tag


if __name__ == "__main__":
    raise SystemExit(main())

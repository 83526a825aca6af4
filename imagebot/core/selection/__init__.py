"""Version selection: pure, complete and explainable.

``select(tags, rule, current=..., now=...)`` returns a ``Decision``: the chosen tag, a one-line
reason and one ``Verdict`` per input tag. Each tag passes the chain of gates in ``gates``; the
strategy (``strategies.STRATEGIES``) ranks the survivors. ``validate_rule`` checks a rule up
front so a policy loader can report a bad range or regex against its file and line.
"""

from __future__ import annotations

from .compiled import ignore_entry_kind, validate_rule
from .gates import GATES, build_time
from .ranges import SemverRange, parse_range
from .rule import (
    Decision,
    Rejection,
    SelectionRule,
    StrategyName,
    TagInfo,
    Verdict,
    explain_lines,
)
from .select import select
from .strategies import STRATEGIES, Strategy
from .versions import SemverTag, parse_tag

__all__ = [
    "GATES",
    "STRATEGIES",
    "Decision",
    "Rejection",
    "SelectionRule",
    "SemverRange",
    "SemverTag",
    "Strategy",
    "StrategyName",
    "TagInfo",
    "Verdict",
    "build_time",
    "explain_lines",
    "ignore_entry_kind",
    "parse_range",
    "parse_tag",
    "select",
    "validate_rule",
]

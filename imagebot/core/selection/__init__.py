"""Version selection: pure, complete and explainable (issue 4).

``select(tags, rule, current=..., now=...)`` returns a ``Decision``: the chosen tag, a one-line
reason and one ``Verdict`` per input tag. ``validate_rule`` checks a rule up front so a policy
loader can report a bad range or regex against its file and line.
"""

from __future__ import annotations

from .compiled import clear_caches, validate_rule
from .rule import (
    STRATEGIES,
    Decision,
    SelectionRule,
    Strategy,
    TagInfo,
    Verdict,
    explain_lines,
)
from .select import select
from .semver_range import SemverRange, parse_range
from .semver_tags import SemverTag, parse_tag

__all__ = [
    "STRATEGIES",
    "Decision",
    "SelectionRule",
    "SemverRange",
    "SemverTag",
    "Strategy",
    "TagInfo",
    "Verdict",
    "clear_caches",
    "explain_lines",
    "parse_range",
    "parse_tag",
    "select",
    "validate_rule",
]

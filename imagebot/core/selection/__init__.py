"""Version selection: ``select(tags, rule, current=..., now=...)`` returns a ``Decision`` (the
chosen tag, a reason, one ``Verdict`` per tag). Each tag passes the chain of gates in ``gates``;
the strategy (``strategies.STRATEGIES``) ranks the survivors."""

from __future__ import annotations

from .compiled import compile_rule, ignore_entry_kind, validate_rule
from .gates import GATES
from .ranges import parse_range
from .rule import (
    Decision,
    GateVerdicts,
    ImageScan,
    Rejection,
    SelectionRule,
    TagInfo,
    Verdict,
    explain_lines,
    gates_json,
    passed,
)
from .select import select
from .strategies import STRATEGIES
from .versions import parse_tag

__all__ = [
    "GATES",
    "STRATEGIES",
    "Decision",
    "GateVerdicts",
    "ImageScan",
    "Rejection",
    "SelectionRule",
    "TagInfo",
    "Verdict",
    "compile_rule",
    "explain_lines",
    "gates_json",
    "ignore_entry_kind",
    "parse_range",
    "parse_tag",
    "passed",
    "select",
    "validate_rule",
]

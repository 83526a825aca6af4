"""``imagebot select``: choose a tag from a list on stdin, as a policy would.

Each stdin line is ``TAG``, optionally followed by its creation time (ISO 8601, ``-`` when
unknown) and its digest, separated by whitespace; ``newest-build``, ``--min-age`` and
``digest`` need those columns. The chosen tag is the only thing printed on stdout, so
``tag=$(imagebot select ...)`` works; ``--explain`` writes the reason for every tag to stderr.
Exit 0: a tag was chosen; 1: none qualifies; 2: the rule itself is invalid.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args, get_origin, get_type_hints

from imagebot.core.durations import parse_duration
from imagebot.core.selection import SelectionRule, TagInfo, explain_lines, select
from imagebot.errors import SelectionError

NAME = "select"


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timestamp(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # One option per SelectionRule field, from its type, default and help.
    hints = get_type_hints(SelectionRule)
    for f in dataclasses.fields(SelectionRule):
        flag, kind, helptext = f"--{f.name.replace('_', '-')}", hints[f.name], f.metadata["help"]
        if kind is bool:  # --no-keep-precision turns off a field that is on by default
            action = argparse.BooleanOptionalAction if f.default else "store_true"
            parser.add_argument(flag, action=action, default=f.default, help=helptext)
        elif get_origin(kind) is Literal:
            parser.add_argument(flag, choices=get_args(kind), default=f.default, help=helptext)
        elif kind == tuple[str, ...]:
            parser.add_argument(flag, action="append", default=[], help=f"{helptext} (repeatable)")
        elif kind == timedelta | None:
            parser.add_argument(flag, type=_duration, metavar="DURATION", help=helptext)
        else:
            parser.add_argument(flag, help=helptext)
    parser.add_argument("--current", metavar="TAG", help="the tag running now")
    parser.add_argument(
        "--now", type=_timestamp, metavar="TIME", help="time to judge --min-age by (default: now)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="write the reason for every tag to stderr"
    )


def _read_tags(lines: list[str]) -> list[str | TagInfo]:
    tags: list[str | TagInfo] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 1:
            tags.append(fields[0])
            continue
        if len(fields) > 3:
            raise ValueError(f"stdin line {number}: expected TAG [CREATED [DIGEST]], got {line!r}")
        created = None
        if fields[1] != "-":
            try:
                created = _timestamp(fields[1])
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"stdin line {number}: {exc}") from exc
        digest = fields[2] if len(fields) == 3 else None
        tags.append(TagInfo(fields[0], created=created, digest=digest))
    return tags


def run(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(SelectionRule):
        value = getattr(args, f.name)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    rule = SelectionRule(**values)
    try:
        tags = _read_tags(sys.stdin.read().splitlines())
    except ValueError as exc:
        print(f"imagebot select: {exc}", file=sys.stderr)
        return 2
    now = args.now or datetime.now(UTC)
    try:
        decision = select(tags, rule, current=args.current, now=now)
    except SelectionError as exc:
        where = f" ({exc.field})" if exc.field else ""
        print(f"imagebot select: invalid rule{where}: {exc}", file=sys.stderr)
        return 2
    if args.explain:
        print("\n".join(explain_lines(decision)), file=sys.stderr)
    if decision.tag is None:
        return 1
    print(decision.tag)
    return 0

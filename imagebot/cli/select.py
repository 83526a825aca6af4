"""``imagebot select``: choose a tag from a list on stdin, as a policy would.

Each stdin line is ``TAG``, optionally followed by its creation time (ISO 8601, ``-`` when
unknown) and its digest, separated by whitespace; ``newest-build``, ``--min-age`` and
``digest`` need those columns. The chosen tag is the only thing printed on stdout, so
``tag=$(imagebot select ...)`` works; ``--explain`` writes the reason for every tag to stderr.
Exit 0: a tag was chosen; 1: none qualifies; 2: the rule itself is invalid.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from imagebot.core.durations import parse_duration
from imagebot.core.selection import (
    STRATEGIES,
    SelectionRule,
    TagInfo,
    explain_lines,
    select,
)
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
    parser.add_argument("--strategy", choices=STRATEGIES, default="semver")
    parser.add_argument("--range", help="semver range, e.g. '^1.2', '>=1 <2', '1.x || 2.x'")
    parser.add_argument("--include", metavar="RE", help="regex a tag must match")
    parser.add_argument(
        "--exclude", metavar="RE", action="append", default=[], help="regex that rejects a tag"
    )
    parser.add_argument(
        "--extract", metavar="TEMPLATE", help="value to order by, e.g. '$version' or '${ts}'"
    )
    parser.add_argument("--prerelease", action="store_true", help="allow prereleases")
    parser.add_argument("--partial", action="store_true", help="read '1.2' as 1.2.0")
    parser.add_argument("--order", choices=("asc", "desc"), default="asc")
    parser.add_argument("--calver", metavar="FORMAT", help="calver format, e.g. YYYY.MM.DD")
    parser.add_argument("--variant", choices=("match", "any"), default="match")
    parser.add_argument("--allow", choices=("major", "minor", "patch"), default="major")
    parser.add_argument("--downgrade", action="store_true", help="allow older than --current")
    parser.add_argument("--min-age", type=_duration, metavar="DURATION", help="e.g. 24h, 7d")
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="TAG", help="tag or range never chosen"
    )
    parser.add_argument("--follow", metavar="TAG", help="strategy digest: the tag to follow")
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
    rule = SelectionRule(
        strategy=args.strategy,
        range=args.range,
        prerelease=args.prerelease,
        partial=args.partial,
        include=args.include,
        exclude=tuple(args.exclude),
        extract=args.extract,
        order=args.order,
        calver=args.calver,
        variant=args.variant,
        allow=args.allow,
        downgrade=args.downgrade,
        min_age=args.min_age,
        ignore=tuple(args.ignore),
        follow=args.follow,
    )
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

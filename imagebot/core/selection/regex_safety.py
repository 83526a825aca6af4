"""Proving a user regex cannot backtrack catastrophically, so it may run unguarded.

The guarded path (``patterns.UserPattern.search``, the ``regex`` package with a per-match
timeout) costs about 3 µs a tag on a small VM, three times the whole budget for choosing from
100,000 tags. Most filters people write (``^\\d+\\.\\d+\\.\\d+$``, ``-rc``, ``^.*-alpine$``,
``^main-[a-f0-9]+-(?P<ts>\\d+)$``, ``^(\\d+\\.)+\\d+$``) are provably harmless, and for those
``gates`` runs the standard library's ``re`` once over the newline-joined tag list instead.

What "provably harmless" means here: a backtracking matcher explores, in the worst case, every
path of the pattern's position automaton (Glushkov's construction, counting parallel edges,
because the matcher does) over every prefix of the text. Weber and Seidl (1991) characterise
how that number of paths grows with the text's length: exponentially exactly when some state
has two different loops reading the same word (EDA), and polynomially of degree ``d`` when
there is a chain of ``d`` states each with a loop and a path to the next on one common word
(IDA). A pattern qualifies when it has no EDA and degree at most one, so a line of ``n``
characters costs at most ``O(n²)`` steps (the search's leading ``.*?`` is part of the automaton
analysed). The alphabet is ASCII without the newline (tags are ``[A-Za-z0-9_.-]`` by the OCI
distribution spec, but registries are not all strict); callers check their text is ASCII.

A pattern also qualifies only when running it over the joined list means the same as running it
on each tag: no element may match the newline that separates tags (``[^x]``, ``\\s``, ``\\D``,
``\\W`` can), no ``\\A``/``\\Z``, no flags, lookarounds or backreferences. Anything else is simply
not proven and takes the guarded path: this module never rejects a pattern, it only lets the
fast path run.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

__all__ = ["anchored_at_start", "line_safe", "sre_constants", "sre_parse"]
sre_constants = sre

#: Characters the analysis covers: ASCII but the newline that separates tags.
TAG_ALPHABET = "".join(chr(c) for c in range(128) if c != ord("\n"))
_FULL = (1 << len(TAG_ALPHABET)) - 1
_BIT = {c: 1 << i for i, c in enumerate(TAG_ALPHABET)}
#: More positions than this: not analysed (the checks below are cubic in them).
_MAX_POSITIONS = 256
_MAX_LOOPING = 24


class _Unproven(Exception):
    """The pattern uses something the analysis does not cover."""


def _category(code: Any, ch: str) -> bool:
    if code is sre.CATEGORY_DIGIT:
        return ch.isdigit()
    if code is sre.CATEGORY_NOT_DIGIT:
        return not ch.isdigit()
    if code is sre.CATEGORY_SPACE:
        return ch.isspace()
    if code is sre.CATEGORY_NOT_SPACE:
        return not ch.isspace()
    if code is sre.CATEGORY_WORD:
        return ch.isalnum() or ch == "_"
    if code is sre.CATEGORY_NOT_WORD:
        return not (ch.isalnum() or ch == "_")
    raise _Unproven(f"category {code}")


def _in_set(items: list[tuple[Any, Any]], ch: str) -> bool:
    negate = False
    hit = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ch == chr(av)
        elif op is sre.RANGE:
            hit = hit or av[0] <= ord(ch) <= av[1]
        elif op is sre.CATEGORY:
            hit = hit or _category(av, ch)
        else:
            raise _Unproven(f"set item {op}")
    return hit != negate


def _char_test(op: Any, av: Any) -> Any:
    if op is sre.LITERAL:
        return lambda ch: ch == chr(av)
    if op is sre.NOT_LITERAL:
        return lambda ch: ch != chr(av)
    if op is sre.ANY:
        return lambda ch: ch != "\n"
    if op is sre.IN:
        return lambda ch: _in_set(av, ch)
    return None


@dataclass
class _Automaton:
    """Glushkov's position automaton; position 0 is the start."""

    masks: list[int] = field(default_factory=lambda: [0])
    #: follow[p][q]: how many ways the pattern lets position q follow p (parallel edges).
    follow: list[dict[int, int]] = field(default_factory=lambda: [{}])

    def position(self, mask: int) -> int:
        if len(self.masks) >= _MAX_POSITIONS:
            raise _Unproven("too many positions")
        self.masks.append(mask)
        self.follow.append({})
        return len(self.masks) - 1

    def link(self, sources: dict[int, int], targets: dict[int, int]) -> None:
        """Let each target follow each source, in as many ways as each can be reached."""
        for p, ways_p in sources.items():
            edges = self.follow[p]
            for q, ways_q in targets.items():
                edges[q] = edges.get(q, 0) + ways_p * ways_q


#: A piece of pattern: (ways to match the empty string, first positions, last positions), each
#: position with the number of ways to reach it: ``(?:|)`` matches the empty string two ways,
#: and a backtracking matcher tries both, so ``(a(?:|))*`` is as bad as ``(a|a)*``.
_Piece = tuple[int, dict[int, int], dict[int, int]]
_EMPTY_STRING_ANCHORS = frozenset({"AT_BEGINNING_STRING", "AT_END_STRING"})


def _add(a: dict[int, int], b: dict[int, int], times: int = 1) -> dict[int, int]:
    out = dict(a)
    if times:
        for p, k in b.items():
            out[p] = out.get(p, 0) + k * times
    return out


def _sequence(auto: _Automaton, pieces: Iterable[_Piece]) -> _Piece:
    empty, first, last = 1, dict[int, int](), dict[int, int]()
    for e, f, lst in pieces:
        auto.link(last, f)
        first = _add(first, f, empty)
        last = _add(lst, last, e)
        empty *= e
    return empty, first, last


def _build(auto: _Automaton, items: Iterable[tuple[Any, Any]]) -> _Piece:
    return _sequence(auto, (_item(auto, op, av) for op, av in items))


def _item(auto: _Automaton, op: Any, av: Any) -> _Piece:
    test = _char_test(op, av)
    if test is not None:
        if test("\n"):
            raise _Unproven("an element matches the newline between tags")
        mask = sum(bit for ch, bit in _BIT.items() if test(ch))
        p = auto.position(mask)
        return 0, {p: 1}, {p: 1}
    if op is sre.AT:
        if str(av) in _EMPTY_STRING_ANCHORS:
            raise _Unproven("\\A or \\Z")
        return 1, {}, {}
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, body = av
        if add_flags or del_flags:
            raise _Unproven("inline flags")
        return _build(auto, body)
    if op is sre.BRANCH:
        empty, first, last = 0, dict[int, int](), dict[int, int]()
        for branch in av[1]:
            e, f, lst = _build(auto, branch)
            empty, first, last = empty + e, _add(first, f), _add(last, lst)
        return empty, first, last
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return _repeat(auto, *av)
    raise _Unproven(f"{op}")


def _repeat(auto: _Automaton, low: int, high: Any, body: Any) -> _Piece:
    """``body{low,high}`` the way a counting matcher walks it: ``low`` copies, then a loop, or
    nested optional copies ``(x(x)?)?`` up to ``high``."""
    unbounded = high is sre.MAXREPEAT
    if (low if unbounded else high) > _MAX_POSITIONS:
        raise _Unproven("repeat count")

    def copy() -> _Piece:
        piece = _build(auto, body)
        if piece[0] and (unbounded or high > 1):
            raise _Unproven("a repeated group that can match the empty string")
        return piece

    pieces = [copy() for _ in range(max(low - 1, 0) if unbounded else low)]
    if unbounded:
        _e, f, lst = copy()
        auto.link(lst, f)
        pieces.append((1 if low == 0 else 0, f, lst))
        return _sequence(auto, pieces)
    optional: _Piece | None = None
    for _ in range(high - low):
        _e, f, lst = copy()
        if optional is not None:
            _oe, of, ol = optional
            auto.link(lst, of)
            lst = _add(lst, ol)
        optional = (1, f, lst)
    if optional is not None:
        pieces.append(optional)
    return _sequence(auto, pieces)


def _sccs(edges: list[list[int]]) -> list[int]:
    """Tarjan's strongly connected components, iteratively: the component id of each node."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    comp = [-1] * len(edges)
    stack: list[int] = []
    on_stack: set[int] = set()
    count = 0
    for root in range(len(edges)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp[top] = count
                    if top == node:
                        break
                count += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return comp


def _reachable(follow: list[dict[int, int]], start: int) -> set[int]:
    seen = {start}
    todo = [start]
    while todo:
        for q in follow[todo.pop()]:
            if q not in seen:
                seen.add(q)
                todo.append(q)
    return seen


def _degree_at_most_one(auto: _Automaton) -> bool:
    """No exponential ambiguity, and no chain of two polynomial steps (see module docstring)."""
    masks, follow = auto.masks, auto.follow
    n = len(masks)
    comp = _sccs([list(f) for f in follow])
    members: dict[int, list[int]] = {}
    for p, c in enumerate(comp):
        members.setdefault(c, []).append(p)
    looping = [p for p in range(n) if p in follow[p] or len(members[comp[p]]) > 1]
    if len(looping) > _MAX_LOOPING:
        return False
    # EDA: two different loops through one state on the same word. Parallel edges inside a
    # component are two such loops at once; otherwise look for a component of the product
    # automaton holding a diagonal pair and an off-diagonal one.
    for states in members.values():
        if not (len(states) > 1 or states[0] in follow[states[0]]):
            continue
        inside = set(states)
        if any(k > 1 for p in states for q, k in follow[p].items() if q in inside):
            return False
        pairs = [(a, b) for a in states for b in states]
        number = {pair: i for i, pair in enumerate(pairs)}
        product = [
            [
                number[(x, y)]
                for x in follow[a]
                if x in inside
                for y in follow[b]
                if y in inside and masks[x] & masks[y]
            ]
            for a, b in pairs
        ]
        pcomp = _sccs(product)
        diagonal = {pcomp[number[(s, s)]] for s in states}
        if any(pcomp[i] in diagonal and a != b for i, (a, b) in enumerate(pairs)):
            return False
    # IDA: p loops on v, q loops on v, and v also leads from p to q. Chains of two such steps
    # (over components) mean a cubic number of paths.
    reach = [_reachable(follow, p) for p in range(n)]
    steps: set[tuple[int, int]] = set()
    for p in looping:
        for q in looping:
            step = (comp[p], comp[q])
            if (
                step[0] != step[1]
                and q in reach[p]
                and step not in steps
                and _ida(auto, p, q, comp, reach)
            ):
                steps.add(step)
    return not any(b == c for (_, b) in steps for (c, _) in steps)


def _ida(auto: _Automaton, p: int, q: int, comp: list[int], reach: list[set[int]]) -> bool:
    """Whether (p, p, q) reaches (p, q, q) in the three-fold product on some nonempty word."""
    masks, follow = auto.masks, auto.follow
    between = {s for s in reach[p] if q in reach[s]}
    start = (p, p, q)
    seen: set[tuple[int, int, int]] = set()
    todo = [start]
    while todo:
        a, b, c = todo.pop()
        for x in follow[a]:
            if comp[x] != comp[p]:
                continue
            for y in follow[b]:
                if y not in between or not masks[x] & masks[y]:
                    continue
                for z in follow[c]:
                    if comp[z] != comp[q] or not masks[x] & masks[y] & masks[z]:
                        continue
                    state = (x, y, z)
                    if state == (p, q, q):
                        return True
                    if state not in seen:
                        seen.add(state)
                        todo.append(state)
    return False


def anchored_at_start(text: str) -> bool:
    """Whether ``text`` (a pattern ``line_safe`` accepts) starts with ``^``."""
    items = list(sre_parse.parse(text))
    return bool(items) and items[0] == (sre.AT, sre.AT_BEGINNING)


def line_safe(text: str) -> bool:
    """Whether ``text`` may run unguarded with the standard library over newline-joined tags,
    with ``^``/``$`` per line and a leading ``.*?`` unless it is anchored at the start."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "possible nested set": the regex package reads
            parsed = sre_parse.parse(text)  # ``[[:alpha:]]`` otherwise
        if parsed.state.flags & ~re.UNICODE:
            return False
        auto = _Automaton()
        start = {0: 1}
        if not (items := list(parsed)) or items[0] != (sre.AT, sre.AT_BEGINNING):
            dot = auto.position(_FULL)
            auto.link(start, {dot: 1})
            auto.link({dot: 1}, {dot: 1})
            start = {0: 1, dot: 1}
        _empty, first, _last = _build(auto, parsed)
        auto.link(start, first)
        return _degree_at_most_one(auto)
    except (_Unproven, re.error, RecursionError, FutureWarning, DeprecationWarning):
        return False

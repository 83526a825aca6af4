"""Calendar versions (calver.org): a format such as ``YYYY.MM.DD`` or ``YYYYMMDD-N`` read as a date.

Tokens are in ``_TOKENS`` (docs/policies.md lists them); everything else is literal text.
Versions order by the date and time they name, then the counter, whatever order the format
writes them in (``DD.MM.YYYY`` orders correctly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebot.errors import SelectionError

#: token -> (key slot, regex). Slots: year, month, week, day, hour, minute, second, counter.
_TOKENS: dict[str, tuple[int, str]] = {
    "YYYY": (0, r"\d{4}"),
    "0Y": (0, r"\d{2}"),
    "YY": (0, r"[1-9]?\d{1,2}"),
    "0M": (1, r"0[1-9]|1[0-2]"),
    "MM": (1, r"1[0-2]|0?[1-9]"),
    "0W": (2, r"[0-4]\d|5[0-3]"),
    "WW": (2, r"5[0-3]|[1-4]\d|0?[1-9]"),
    "0D": (3, r"0[1-9]|[12]\d|3[01]"),
    "DD": (3, r"3[01]|[12]\d|0?[1-9]"),
    "hh": (4, r"[01]\d|2[0-3]"),
    "mm": (5, r"[0-5]\d"),
    "ss": (6, r"[0-5]\d"),
    "MICRO": (7, r"\d+"),
    "N": (7, r"\d+"),
}
_TOKEN_RE = re.compile("|".join(sorted(map(re.escape, _TOKENS), key=len, reverse=True)))

CalverKey = tuple[int, int, int, int, int, int, int, int]


@dataclass(frozen=True)
class CalverFormat:
    """A compiled calver format."""

    text: str
    pattern: re.Pattern[str]
    #: for each regex group, which key slot it fills and whether it is a short year.
    slots: tuple[tuple[int, bool], ...]

    @property
    def off_format(self) -> str:
        """Why a value that does not follow the format cannot be ordered."""
        return f"does not follow calver {self.text}"

    def read(self, value: str) -> CalverKey | None:
        """The ordering key of ``value``, or None when it does not follow the format."""
        m = self.pattern.fullmatch(value)
        if m is None:
            return None
        key = [0, 0, 0, 0, 0, 0, 0, 0]
        for (slot, short_year), text in zip(self.slots, m.groups(), strict=True):
            number = int(text)
            key[slot] = 2000 + number if short_year else number
        return (key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7])


def compile_calver(text: str) -> CalverFormat:
    """Compile a calver format; SelectionError(field="calver") when it has no year."""
    parts: list[str] = []
    slots: list[tuple[int, bool]] = []
    pos = 0
    for m in _TOKEN_RE.finditer(text):
        parts.append(re.escape(text[pos : m.start()]))
        slot, pattern = _TOKENS[m.group()]
        parts.append(f"({pattern})")
        slots.append((slot, m.group() in ("YY", "0Y")))
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    filled = [slot for slot, _ in slots]
    if 0 not in filled:
        raise SelectionError(
            f"calver format {text!r} has no year (use YYYY, YY or 0Y, e.g. 'YYYY.MM.DD')",
            field="calver",
        )
    if len(set(filled)) != len(filled):
        raise SelectionError(f"calver format {text!r} names the same part twice", field="calver")
    return CalverFormat(text=text, pattern=re.compile("".join(parts)), slots=tuple(slots))

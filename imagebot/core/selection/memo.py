"""A bounded memo of a pure function, owned by the object that uses it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Remembered results of a pure function of a tag, bounded: it starts over when full.

    A daemon reads the same tag lists every cycle; remembering turns the second cycle's regex
    matches and version readings into dict lookups."""

    LIMIT = 200_000

    def __init__(self, compute: Callable[[K], V]) -> None:
        self._compute = compute
        self._known: dict[K, V] = {}

    def __call__(self, item: K) -> V:
        known = self._known.get(item, self)
        if known is not self:
            return known  # type: ignore[return-value]
        if len(self._known) >= self.LIMIT:
            self._known.clear()
        value = self._known[item] = self._compute(item)
        return value

"""Pausing the cyclic garbage collector around bulk work that makes no reference cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause cyclic garbage collection for the block; it resumes after, and stays off if the
    caller had turned it off.

    Parsing a YAML file into node trees and choosing from 100,000 tags both allocate enough
    container objects to set off full collections, each of which walks every live object
    again: a quarter of ``bench/rewrite.py``'s time and a third of a choice's. Neither creates
    reference cycles (reference counting frees all they allocate), so nothing is left waiting
    for the collector.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()

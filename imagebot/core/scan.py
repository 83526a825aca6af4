"""What the registry said about one repository in one cycle — the input of selection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from imagebot.core.selection import TagInfo


@dataclass(frozen=True)
class ImageScan:
    """What the registry said about one repository in this cycle."""

    tags: tuple[TagInfo, ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)  # tag -> digest
    error: str | None = None
    fingerprint: str | None = None
    """A hash of the tag names in registry order, when the scan made one: selection under a
    rule that reads only names gives the same answer for the same fingerprint."""

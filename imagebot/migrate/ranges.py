"""Version ranges written for Masterminds semver (Flux, Argo CD Image Updater) or Renovate,
as imagebot semver fields."""

from __future__ import annotations

import re

from imagebot.core.policy import ImagePolicy
from imagebot.core.selection import validate_rule
from imagebot.errors import SelectionError
from imagebot.migrate.model import Field

_PRERELEASE = re.compile(r"\d(?:\.[\dxX*]+)*-[0-9A-Za-z]")


def valid_range(text: str) -> str | None:
    """Why imagebot rejects ``text`` as a range, or None if it accepts it."""
    try:
        entry = {"name": "x", "repository": "example/x", "range": text}
        rule = ImagePolicy.model_validate(entry).rule()
        validate_rule(rule)
    except (SelectionError, ValueError) as exc:
        return str(exc)
    return None


def range_fields(text: str, where: str, warnings: list[str], *, dialect: str) -> list[Field]:
    """``strategy: semver`` with ``range`` (if any), ``partial`` and ``prerelease``, each
    commented where the peer reads it differently."""
    fields = [
        Field("strategy", "semver"),
        Field(
            "partial",
            True,
            f"{dialect} parses tags leniently (Masterminds semver): 1.2 counts as 1.2.0.",
        ),
    ]
    text = text.strip()
    if not text:
        return fields
    problem = valid_range(text)
    if problem is not None:
        warnings.append(f"{where}: range {text!r} is not accepted ({problem}); dropped")
        fields[
            0
        ].comment = f"{dialect} range {text!r} has no equivalent ({problem}): add a range by hand."
        return fields
    fields.append(Field("range", text))
    if _PRERELEASE.search(text):
        fields.append(
            Field(
                "prerelease",
                True,
                f"{dialect} (Masterminds) admits prereleases of every version in a range that"
                " names a prerelease (>=1.2.0-0); imagebot admits them with prerelease: true,"
                " and its ranges follow npm, which admits prereleases only of the versions"
                " the range names.",
            )
        )
    return fields

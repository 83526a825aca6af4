"""Version ranges written for Masterminds semver (Flux, Argo CD Image Updater) or Renovate,
as imagebot semver fields."""

from __future__ import annotations

from imagebot.core.policy import ImagePolicy
from imagebot.core.selection import validate_rule
from imagebot.errors import SelectionError
from imagebot.migrate.model import Field


def valid_range(text: str, range_style: str = "npm") -> str | None:
    """Why imagebot rejects ``text`` as a range, or None if it accepts it."""
    try:
        entry = {"name": "x", "repository": "example/x", "range": text, "range_style": range_style}
        rule = ImagePolicy.model_validate(entry).rule()
        validate_rule(rule)
    except (SelectionError, ValueError) as exc:
        return str(exc)
    return None


def range_fields(text: str, where: str, warnings: list[str], *, dialect: str) -> list[Field]:
    """``strategy: semver`` with ``partial``, and ``range`` with ``range_style: masterminds``
    (if a range is given), each commented where the peer reads it differently."""
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
    problem = valid_range(text, "masterminds")
    if problem is not None:
        warnings.append(f"{where}: range {text!r} is not accepted ({problem}); dropped")
        fields[
            0
        ].comment = f"{dialect} range {text!r} has no equivalent ({problem}): add a range by hand."
        return fields
    fields.append(Field("range", text))
    fields.append(
        Field(
            "range_style",
            "masterminds",
            f"As {dialect} reads ranges: >=1.2.0-0 admits every prerelease in range.",
        )
    )
    return fields

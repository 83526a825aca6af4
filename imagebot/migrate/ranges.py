"""Version ranges written for Masterminds semver (Flux, Argo CD Image Updater) or Renovate,
as imagebot semver fields."""

from __future__ import annotations

from dataclasses import replace

from imagebot.core.policy import ImagePolicy
from imagebot.core.selection import parse_range, validate_rule
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


#: How each peer reads a tag as a version, as imagebot fields: Argo CD Image Updater calls
#: Masterminds' lenient ``NewVersion`` (``1.2`` is 1.2.0); Flux's ``version.ParseVersion``
#: (fluxcd/pkg) first demands three dot-separated parts.
TAG_READING = {
    "Argo CD Image Updater": Field(
        "partial", True, "Argo CD Image Updater reads tags leniently (Masterminds): 1.2 is 1.2.0."
    ),
    "Flux": Field(
        "keep_precision", False, "Flux reads only tags with three numbers: 1.2 is no version."
    ),
}


def range_fields(text: str, where: str, warnings: list[str], *, dialect: str) -> list[Field]:
    """``strategy: semver``, how the peer reads tags, and ``range`` with ``range_style:
    masterminds`` (if a range is given), each commented where the peer differs."""
    fields = [Field("strategy", "semver"), replace(TAG_READING[dialect])]
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
    comment = f"As {dialect} reads ranges: >=1.2.0-0 admits every prerelease in range."
    named = [bool(parse_range(part).prerelease_cores()) for part in text.split("||")]
    if any(named) and not all(named):
        comment = (
            f"{dialect} admits prereleases only in the || alternatives that name one;"
            " imagebot in every alternative: name a prerelease in each, or split the image."
        )
        warnings.append(f"{where}: range {text!r}: {comment}")
    fields.append(Field("range_style", "masterminds", comment))
    return fields

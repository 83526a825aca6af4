"""Comment markers that tie any scalar to a policy.

``# imagebot: <policy>`` and Flux's ``# {"$imagepolicy": "<namespace>:<policy>"}`` (see
https://fluxcd.io/flux/guides/image-update/#configure-image-update-for-custom-resources)
both end a line that holds a scalar. A suffix ``:tag``, ``:digest`` or ``:name`` says the
scalar holds only that part; without one it holds a whole ``repository:tag[@digest]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IMAGEBOT = re.compile(r"#\s*imagebot:\s*([A-Za-z0-9][\w.:/-]*)")
_FLUX = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}')
_PARTS = ("tag", "digest", "name")
NEEDLES = ("imagebot:", "$imagepolicy")


@dataclass(frozen=True)
class Marker:
    """One marker comment: where it starts and what it names."""

    offset: int
    """Offset of the ``#``."""
    line: int
    """0-based line."""
    policy: str
    """Policy name, without a Flux namespace."""
    part: str
    """``"ref"``, ``"tag"``, ``"digest"`` or ``"name"``."""
    flux: bool
    raw: str
    """The marker's value as written."""
    namespace: str | None = None
    """The namespace of a Flux marker (``flux-system`` in ``flux-system:app``)."""


def has_markers(text: str, start: int = 0, end: int | None = None) -> bool:
    stop = len(text) if end is None else end
    return any(text.find(needle, start, stop) >= 0 for needle in NEEDLES)


def _parse(raw: str, *, flux: bool) -> tuple[str, str, str | None]:
    parts = raw.split(":")
    part = "ref"
    if len(parts) > 1 and parts[-1] in _PARTS:
        part = parts.pop()
    # Flux names a policy as namespace:name; imagebot policies have no namespace.
    if flux and len(parts) > 1:
        return parts[-1], part, ":".join(parts[:-1])
    return ":".join(parts), part, None


def find(text: str, start: int = 0, end: int | None = None) -> list[Marker]:
    """Every marker comment in ``text[start:end]``, in order."""
    stop = len(text) if end is None else end
    found: list[Marker] = []
    for pattern, flux in ((_IMAGEBOT, False), (_FLUX, True)):
        for m in pattern.finditer(text, start, stop):
            policy, part, namespace = _parse(m.group(1), flux=flux)
            line = text.count("\n", 0, m.start())
            found.append(Marker(m.start(), line, policy, part, flux, m.group(1), namespace))
    found.sort(key=lambda marker: marker.offset)
    return found

"""Configuration and secret files read again whenever they change, so a running ``serve``
takes a rotated token or an edited ``registries.yaml`` on its next use, without a restart.

A file is read on every use (configuration and secrets are small) and parsed again when
its bytes changed — however it changed: an edit, or Kubernetes swapping the ``..data``
link of a mounted Secret or ConfigMap. A version that does not parse keeps the last good
one in use; the problem is logged once and listed by :func:`problems` (``/readyz`` shows
it) until the file is fixed. A file never read successfully is an error, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from imagebot import logs, redact
from imagebot.core.yamldoc import MAX_FILE_BYTES
from imagebot.errors import ImagebotError

log = logs.get_logger("imagebot.config")

T = TypeVar("T")

_good: dict[tuple[str, str], tuple[bytes | None, Any]] = {}
_problems: dict[tuple[str, str], str] = {}


def _content(path: Path) -> bytes | None:
    """The file's bytes (as far as any configuration file may go), None when unreadable."""
    try:
        with path.open("rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None


def read_capped(path: Path) -> str:
    """A configuration file's text, read no further than one byte past the size limit, so
    a huge file is refused by the parser without being read whole."""
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    return data.decode("utf-8", "replace" if len(data) > MAX_FILE_BYTES else "strict")


def read(path: Path, parse: Callable[[Path], T], *, what: str) -> T:
    """``parse(path)``, parsed again only when the file changed; when a changed file fails
    to parse (ImagebotError, OSError, ValueError), the last good value with a problem."""
    key = (what, str(path))
    seen = _content(path)
    last = _good.get(key)
    if last is not None and seen is not None and last[0] == seen:
        return last[1]  # type: ignore[no-any-return]
    try:
        value = parse(path)
    except (ImagebotError, OSError, ValueError) as exc:
        if last is None:
            raise
        if key not in _problems:
            log.error("config_kept_last_good", file=str(path), what=what, error=str(exc))
        named = str(exc) if str(path) in str(exc) else f"{what} {path}: {exc}"
        _problems[key] = f"{named}; still using the last good version"
        return last[1]  # type: ignore[no-any-return]
    if last is not None:
        log.info("config_reloaded", file=str(path), what=what)
    _good[key] = (seen, value)
    _problems.pop(key, None)
    return value


def problems() -> list[str]:
    """Every file whose current version is broken while its last good one is in use."""
    return sorted(_problems.values())


def secret_file(path: Path, *, what: str) -> str:
    """:func:`imagebot.redact.secret_file`, read again only when the file changed; a rotation
    that breaks the file keeps the last good secret."""
    return read(path, lambda p: redact.secret_file(p, what=what), what=what)

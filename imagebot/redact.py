"""Secrets: stripped and checked where they are read, masked at one point before anything
imagebot prints, logs or serves shows them.

Every secret imagebot reads (forge tokens, the webhook secret, registry passwords) goes
through :func:`secret` or :func:`secret_file`, and is :func:`remember`-ed where it is known
to be one; :func:`redact` replaces each remembered value in a text, and
:func:`redact_value` in a JSON-like value.
The log processor, error messages and ``/readyz`` all go through these two.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MASK = "***"
MAX_SECRET_BYTES = 16 * 1024
"""Longest secret accepted: a registry token or a JWT is a few KiB; a file longer than this
is not a token (a certificate bundle, a log, /etc/shadow)."""

#: Shorter values are not masked: a short password that is also a word ("config") would be
#: masked in every message that uses the word, hiding more than it protects.
_MIN_MASKED = 8
_MAX_REMEMBERED = 256  # rotated secrets are re-read: keep the newest, bounded
_known: dict[str, None] = {}


class SecretError(ValueError):
    """A secret breaks a rule; the message names the rule, never the content."""


def remember(value: str) -> str:
    """Mask ``value`` from now on wherever imagebot shows text; returns it unchanged."""
    if len(value) >= _MIN_MASKED:
        # as written, and as a JSON text writes it (a quote or backslash escaped)
        for form in {value, json.dumps(value)[1:-1]}:
            _known.pop(form, None)
            _known[form] = None
        while len(_known) > _MAX_REMEMBERED:
            del _known[next(iter(_known))]
    return value


def secret(value: str, *, what: str) -> str:
    """``value`` without surrounding whitespace (``echo tok | base64`` adds a newline),
    checked to be one line of printable text."""
    value = value.strip()
    if not value:
        raise SecretError(f"{what} is empty")
    if len(value.encode("utf-8", "replace")) > MAX_SECRET_BYTES:
        raise SecretError(f"{what} is longer than {MAX_SECRET_BYTES} bytes: not a token")
    if "\n" in value or "\r" in value:
        raise SecretError(f"{what} holds several lines: a token is one line")
    if not value.isprintable():
        raise SecretError(f"{what} holds control characters: a token is printable text")
    return value


def secret_file(path: Path, *, what: str) -> str:
    """The secret held by the file at ``path`` (see :func:`secret`); OSError when unreadable.
    At most MAX_SECRET_BYTES (plus a little whitespace) is read, whatever the file's size.
    Where a daemon re-reads a file, :func:`imagebot.livefile.secret_file` keeps the last
    good secret through a rotation that breaks it."""
    with path.open("rb") as f:
        raw = f.read(MAX_SECRET_BYTES + 64)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{what} {path} is binary, not a token") from None
    return secret(text, what=f"{what} {path}")


def redact(text: str) -> str:
    """``text`` with every remembered secret replaced by ``***``."""
    for value in sorted((v for v in _known if v in text), key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def redact_value(value: Any) -> Any:
    """``value`` (a log event, a JSON document) with every string in it redacted."""
    if not _known:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, int | float):
        return value
    return redact(str(value) if isinstance(value, BaseException) else repr(value))

"""The process environment and home directory a provider reads, injected rather than global.

Providers never touch ``os.environ`` or ``Path.home()`` themselves: the factory hands
them one ``Environment`` so tests (and a daemon serving several tenants) decide exactly
which variables and which home directory a credential lookup sees.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imagebot.errors import AuthError
from imagebot.livefile import secret_file
from imagebot.redact import SecretError, secret


@dataclass(frozen=True)
class Environment:
    """Environment variables and a home directory for credential lookups."""

    vars: Mapping[str, str] = field(default_factory=dict)
    home: Path = field(default_factory=Path.home)

    @classmethod
    def of(cls, env: Mapping[str, str] | None, home: Path | None) -> Environment:
        """``env``/``home`` as given, else the real process environment and home."""
        resolved_env = dict(os.environ) if env is None else dict(env)
        if home is None:
            home_var = resolved_env.get("HOME")
            home = Path(home_var) if home_var else Path.home()
        return cls(vars=resolved_env, home=home)

    def get(self, name: str) -> str | None:
        """The variable's value, or None when it is unset or empty."""
        value = self.vars.get(name)
        return value if value else None

    def path(self, raw: str) -> Path:
        """A configured path with ``~`` expanded against the injected home."""
        if raw == "~" or raw.startswith("~/"):
            return self.home / raw[2:]
        return Path(raw)


def read_secret_file(path: Path, *, registry: str, what: str) -> str:
    """The secret a file holds, without surrounding whitespace (an editor's or ``echo``'s
    newline); a file that is not one line of text is refused without showing its content."""
    try:
        return secret_file(path, what=what)
    except OSError as exc:
        raise AuthError(
            f"{what}: cannot read {path}: {exc.strerror or type(exc).__name__}", registry=registry
        ) from None
    except SecretError as exc:
        raise AuthError(str(exc), registry=registry) from None


def require_env(environment: Environment, name: str, *, registry: str, what: str) -> str:
    """The value of a variable the configuration names (surrounding whitespace dropped);
    unset is an error, not anonymity."""
    value = environment.get(name)
    if value is None:
        raise AuthError(f"{what}: environment variable {name} is not set", registry=registry)
    try:
        return secret(value, what=f"{what}: environment variable {name}")
    except SecretError as exc:
        raise AuthError(str(exc), registry=registry) from None

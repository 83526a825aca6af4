"""What a conversion produces: environments as ordered fields with comments, rendered to
policy-file YAML and checked by the same validation ``imagebot check`` uses."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field

from imagebot.core.policy_file import parse_policy
from imagebot.core.rewrite.splice import render_plain
from imagebot.errors import PolicyError

#: A value written into a policy file: a scalar, a list of strings, or a nested block.
Value = str | bool | list[str] | list["Field"]

_NAME_BAD = re.compile(r"[^a-z0-9-]+")


@dataclass
class Field:
    """One ``key: value`` of a policy file, with the reason it is not an exact equivalent."""

    key: str
    value: Value
    comment: str | None = None


@dataclass
class ImageOut:
    """One image policy and where it came from."""

    origin: str
    fields: list[Field]


@dataclass
class EnvironmentOut:
    """One policy file."""

    name: str
    origin: str
    repo: list[Field]
    images: list[ImageOut]
    settings: list[Field] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Comments at the top of the file: what has no place in a field."""


@dataclass
class Migration:
    """Everything a conversion found, and what it could not convert."""

    tool: str
    environments: list[EnvironmentOut] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def policy_name(raw: str) -> str:
    """``raw`` as a valid environment or image name (lower case, ``-`` for other chars)."""
    name = _NAME_BAD.sub("-", raw.lower()).strip("-")
    return name or "unnamed"


def unique(name: str, taken: set[str]) -> str:
    out, n = name, 2
    while out in taken:
        out, n = f"{name}-{n}", n + 1
    taken.add(out)
    return out


def _scalar(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if render_plain(value) == value and value else json.dumps(value)


def _comment(text: str, indent: str) -> list[str]:
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(
            text,
            width=max(40, 92 - len(indent)),
            break_long_words=False,
            break_on_hyphens=False,
        )
    ]


def _fields(fields: list[Field], indent: str, first: str | None = None) -> list[str]:
    out: list[str] = []
    for i, f in enumerate(fields):
        lead = first if first is not None and i == 0 else indent
        if f.comment:
            out.extend(_comment(f.comment, indent))
        value = f.value
        if isinstance(value, list) and value and isinstance(value[0], Field):
            out.append(f"{lead}{f.key}:")
            out.extend(_fields([v for v in value if isinstance(v, Field)], indent + "  "))
        elif isinstance(value, list):
            items = ", ".join(json.dumps(v) for v in value)
            out.append(f"{lead}{f.key}: [{items}]")
        else:
            out.append(f"{lead}{f.key}: {_scalar(value)}")
    return out


def render(env: EnvironmentOut, tool: str) -> str:
    """The policy file's text."""
    lines = _comment(f"Converted by `imagebot migrate --from {tool}` from {env.origin}.", "")
    for note in env.notes:
        lines.extend(_comment(note, ""))
    lines.append(f"environment: {env.name}")
    lines.append("repo:")
    lines.extend(_fields(env.repo, "  "))
    lines.extend(_fields(env.settings, ""))
    lines.append("images:")
    for image in env.images:
        lines.extend(_comment(f"from {image.origin}", "  "))
        lines.extend(_fields(image.fields, "    ", first="  - "))
    return "\n".join(lines) + "\n"


def checked(env: EnvironmentOut, tool: str, path: str) -> str:
    """The rendered policy, validated as ``imagebot check`` would; a conversion that would
    write an invalid file raises :class:`PolicyError` naming it."""
    text = render(env, tool)
    try:
        parse_policy(text, source=path)
    except PolicyError as exc:
        raise PolicyError([f"converted policy is invalid: {p}" for p in exc.problems]) from exc
    return text

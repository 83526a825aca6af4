"""Image reference strings and how a new value is written into an existing scalar."""

from __future__ import annotations

import re

from imagebot.core.reference import DIGEST_RE, TAG_RE, parse
from imagebot.errors import EditError, InvalidReference

# Implicit types of YAML 1.1 (libyaml, sigs.k8s.io/yaml, Helm) and YAML 1.2 core
# (go-yaml v3, kustomize): a tag such as 1.10, 1e3, 0x1F, 2024-01-01 or "on" must be quoted
# in any of them to stay a string (Helm turns an unquoted 1.10 into 1.1).
_NOT_STR = re.compile(
    r"""^(?:
      ~|null|Null|NULL
    | y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF
    | [-+]?(?:0b[0-1_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|(?:0|[1-9][0-9_]*)(?::[0-5]?[0-9])*)
    | [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    | [-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
    | [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
    | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9].*)?
    | = | <<
    )$""",
    re.VERBOSE,
)
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:@+=-]*$")
TEMPLATE_MARKS = ("{{", "${", "{%")


def is_templated(value: str) -> bool:
    """True for Helm/Go (``{{ }}``), shell/compose (``${}``) or Jinja templates."""
    return any(mark in value for mark in TEMPLATE_MARKS)


def reads_as_string(value: str) -> bool:
    """Whether a plain (unquoted) scalar with this text is a string in YAML 1.1 and 1.2."""
    return not _NOT_STR.match(value)


def split_reference(value: str) -> tuple[str, str | None, str | None]:
    """``ghcr.io/a/b:1.2@sha256:...`` → (``ghcr.io/a/b``, ``1.2``, ``sha256:...``), as written."""
    name, at, digest = value.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest if at else None
    return name, None, digest if at else None


def check_version(tag: str | None, digest: str | None) -> None:
    """Refuse a tag or digest Docker would not accept, before it reaches a file."""
    if tag is not None and not TAG_RE.match(tag):
        raise InvalidReference(f"invalid tag {tag!r}")
    if digest is not None and not DIGEST_RE.match(digest):
        raise InvalidReference(f"invalid digest {digest!r}")


def check_name(name: str) -> None:
    """Refuse a repository name that is not one (or carries a tag or digest)."""
    ref = parse(name)
    if ref.tag or ref.digest:
        raise InvalidReference(f"{name!r} is not a bare repository name")


def _quoted(value: str, quote: str) -> str:
    if quote == "'":
        return "'" + value.replace("'", "''") + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _block_content(raw: str, value: str) -> tuple[int, int] | None:
    """Span of a one-line block scalar's content inside its raw text (header excluded)."""
    newline = raw.find("\n")
    if newline < 0 or "\n" in value:
        return None
    start = raw.find(value, newline)
    if start < 0 or raw[newline:start].strip() or raw[start + len(value) :].strip():
        return None
    return start, start + len(value)


def rewrite_scalar(raw: str, style: str, old: str, new: str, *, where: str) -> str:
    """The raw text of a scalar holding ``new`` instead of ``old``, in the same style.

    Only the characters of the value change: quotes, block indicators and indentation stay.
    A plain scalar that would no longer read as a string is double-quoted.
    """
    if style == "":
        if raw == old and (not raw or _PLAIN_SAFE.match(raw)):
            if _PLAIN_SAFE.match(new) and reads_as_string(new):
                return new
            return _quoted(new, '"')
        if old == "" and raw in ("", "~", "null", "Null", "NULL"):
            return _quoted(new, '"') if not reads_as_string(new) else new
    elif style in ("'", '"'):
        if raw[1:-1] == old:
            return _quoted(new, style)
    elif style in ("|", ">"):
        span = _block_content(raw, old)
        if span is not None:
            return raw[: span[0]] + new + raw[span[1] :]
        raise EditError(f"{where}: cannot edit a multi-line block scalar")
    # Escapes or line folding: the value is not written verbatim, so write it afresh.
    if "\n" in raw:
        raise EditError(f"{where}: cannot edit a scalar folded over several lines")
    return _quoted(new, '"' if style != "'" else "'")

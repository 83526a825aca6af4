"""Image references, parsed and normalised exactly as Docker does.

``nginx`` is ``docker.io/library/nginx``; ``localhost:5000/app`` and ``registry.io/a/b``
keep their registry; a first path component is a registry only when it contains a ``.``
or a ``:``, is ``localhost``, or has upper-case letters (distribution/reference's
``splitDockerDomain``). ``index.docker.io`` is an alias of ``docker.io``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from imagebot.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"

# distribution/reference grammar
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_RE = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
#: The digests a registry serves and docker accepts: the OCI image spec's two registered
#: algorithms, lowercase hex (go-digest refuses anything else).
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One parsed image reference. ``domain`` and ``path`` are normalised."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The full normalised repository: ``docker.io/library/nginx``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """The short form Docker prints: ``nginx``, ``bitnami/redis``, ``ghcr.io/a/b``."""
        return familiar_repository(self.repository)

    def __str__(self) -> str:
        return join_reference(self.repository, self.tag, self.digest)


def join_reference(name: str, tag: str | None, digest: str | None) -> str:
    """``name[:tag][@digest]``."""
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def split_domain(name: str) -> tuple[str, str]:
    """Split a repository name into (domain, path), applying Docker's defaults."""
    first, sep, rest = name.partition("/")
    if not sep or (
        "." not in first and ":" not in first and first != "localhost" and first.lower() == first
    ):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    return domain, path


def parse(text: str) -> ImageRef:
    """Parse ``[domain/]path[:tag][@digest]``; raise :class:`InvalidReference` if malformed."""
    s = text.strip()
    if not s:
        raise InvalidReference("empty image reference")
    name, digest = s, None
    if "@" in s:
        name, _, digest = s.partition("@")
        if not DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid digest in image reference {text!r}")
    tag = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG_RE.match(tag):
            raise InvalidReference(f"invalid tag {tag!r} in image reference {text!r}")
    if not name:
        raise InvalidReference(f"missing repository in image reference {text!r}")
    domain, path = split_domain(name)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid registry {domain!r} in image reference {text!r}")
    if not _PATH_RE.match(path):
        raise InvalidReference(
            f"invalid repository name {path!r} in image reference {text!r}"
            " (lower case letters, digits and . _ - separators only)"
        )
    return ImageRef(domain=domain, path=path, tag=tag, digest=digest)


@functools.lru_cache(maxsize=8192)
def normalize_repository(name: str) -> str:
    """``nginx`` → ``docker.io/library/nginx``; a tag or digest, if present, is dropped."""
    return parse(name).repository


def familiar_repository(repository: str) -> str:
    """The shortest form of a normalised repository that normalises back to it."""
    domain, _, path = repository.partition("/")
    if domain != DEFAULT_DOMAIN:
        return repository
    if path.startswith(OFFICIAL_REPO_PREFIX) and "/" not in path[len(OFFICIAL_REPO_PREFIX) :]:
        return path[len(OFFICIAL_REPO_PREFIX) :]
    return path


def is_loopback_host(domain: str) -> bool:
    """True for registries Docker treats as insecure by default (plain HTTP allowed)."""
    host = domain
    if host.startswith("["):
        host = host[1 : host.find("]")]
    else:
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host == "localhost" or host == "::1" or host.startswith("127.")

"""Per-registry settings: the ``registries.yaml`` file, built-in defaults for public registries.

```yaml
defaults:                  # every registry not listed below
  concurrency: 8
registries:
  registry.internal:5000:
    insecure: true         # plain HTTP
  harbor.example.com:
    ca_file: /etc/ssl/harbor-ca.pem
    credentials: {type: basic, username: robot, password_env: HARBOR_TOKEN}
```

Values resolve as: built-in defaults for the host (Docker Hub, GHCR, Quay, ECR, GAR, ACR…)
← ``defaults:`` ← the host's own entry. Errors name ``file:line: field``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from imagebot.core import yamldoc
from imagebot.core.reference import is_loopback_host
from imagebot.errors import PolicyError
from imagebot.livefile import read_capped
from imagebot.registry.providers.spec import CredentialSource

TagOrder = Literal["lexical", "oldest-first", "newest-first"]

_PLATFORM_RE = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")


class RegistrySettings(BaseModel):
    """One registry's options as written in the file; ``None`` means "use the default"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    insecure: bool | None = Field(
        default=None, description="plain HTTP; default: true for loopback hosts, as Docker does"
    )
    ca_file: str | None = Field(default=None, description="PEM bundle to verify the server")
    client_cert: str | None = Field(default=None, description="PEM client certificate (mTLS)")
    client_key: str | None = Field(default=None, description="PEM key of client_cert")
    concurrency: int | None = Field(default=None, ge=1, le=1024)
    rate: float | None = Field(default=None, gt=0, description="requests per second")
    burst: int | None = Field(default=None, ge=1, description="token-bucket size")
    page_size: int | None = Field(default=None, ge=1, le=100_000, description="tags/list ?n=")
    tag_cap: int | None = Field(default=None, ge=1, description="most tags kept per repository")
    tag_order: TagOrder | None = Field(
        default=None, description="the order the registry lists tags in; decides what a cap keeps"
    )
    platform: str | None = Field(default=None, description="os/arch[/variant] of multi-arch images")
    timeout: float | None = Field(
        default=None, gt=0, description="seconds to connect, and to wait for each network read"
    )
    deadline: float | None = Field(
        default=None, gt=0, description="seconds for one whole request: headers and body"
    )
    repository_deadline: float | None = Field(
        default=None,
        gt=0,
        description="seconds for listing one repository's tags: every page, retry and wait",
    )
    scan_interval: float | None = Field(
        default=None,
        ge=0,
        description="seconds a repository's last tag listing is used before it is listed"
        " again (Flux's ImageRepository interval); 0: every cycle lists every repository",
    )
    max_pages: int | None = Field(
        default=None,
        ge=1,
        description="most tags/list pages followed; default 10 x tag_cap / page_size, at least 100",
    )
    max_response_bytes: int | None = Field(
        default=None, ge=1024, description="largest answer read, in bytes; default 64 MiB"
    )
    credentials: CredentialSource | None = None

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str | None) -> str | None:
        if value is not None and not _PLATFORM_RE.match(value):
            raise ValueError(f"expected os/arch[/variant] like linux/arm64/v8, got {value!r}")
        return value

    @field_validator("client_key")
    @classmethod
    def _key_needs_cert(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not info.data.get("client_cert"):
            raise ValueError("client_key needs client_cert")
        return value


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """The effective settings of one registry host: every value decided."""

    host: str
    insecure: bool
    ca_file: str | None
    client_cert: str | None
    client_key: str | None
    concurrency: int
    rate: float | None
    burst: int
    page_size: int
    tag_cap: int
    tag_order: TagOrder
    platform: str
    timeout: float
    deadline: float
    repository_deadline: float
    scan_interval: float
    max_pages: int
    max_response_bytes: int

    @property
    def base_url(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"


# Built-in politeness for public registries. Docker Hub counts manifest GETs against a pull
# quota and throttles any IP at "thousands of requests per minute"; GHCR, Quay and the cloud
# registries publish per-second quotas in the tens. These keep a large scan well inside them.
_PUBLIC: dict[str, dict[str, Any]] = {
    "docker.io": {"concurrency": 4, "rate": 10.0, "burst": 20},
    "ghcr.io": {"concurrency": 8, "rate": 20.0, "burst": 40},
    "quay.io": {"concurrency": 4, "rate": 10.0, "burst": 20},
    "gcr.io": {"concurrency": 8, "rate": 20.0, "burst": 40},
    "registry.k8s.io": {"concurrency": 4, "rate": 10.0, "burst": 20},
    "mcr.microsoft.com": {"concurrency": 8, "rate": 20.0, "burst": 40},
    "public.ecr.aws": {"concurrency": 4, "rate": 10.0, "burst": 20},
}
_PUBLIC_SUFFIXES: dict[str, dict[str, Any]] = {
    ".gcr.io": _PUBLIC["gcr.io"],
    "-docker.pkg.dev": {"concurrency": 8, "rate": 20.0, "burst": 40},
    ".amazonaws.com": {"concurrency": 8, "rate": 20.0, "burst": 40},
    ".azurecr.io": {"concurrency": 8, "rate": 15.0, "burst": 30},
}
_FALLBACK: dict[str, Any] = {
    "ca_file": None,
    "client_cert": None,
    "client_key": None,
    "concurrency": 8,
    "rate": None,
    "burst": 1,
    "page_size": 1000,
    "tag_cap": 10_000,
    "tag_order": "lexical",
    "platform": "linux/amd64",
    "timeout": 30.0,
    "deadline": 120.0,
    "repository_deadline": 600.0,
    "scan_interval": 0.0,
    "max_pages": None,  # derived from tag_cap and page_size, see default_max_pages
    "max_response_bytes": 64 * 1024 * 1024,
}
_LOOPBACK: dict[str, Any] = {"concurrency": 16}


def default_max_pages(tag_cap: int, page_size: int) -> int:
    """Pages enough for ten times the tag cap at the page size asked for (a registry may
    send smaller pages than asked, and a lexical listing reads past the cap), never fewer
    than 100: a bound on a registry whose ``Link`` header never ends, not on real ones."""
    return max(100, 10 * -(-tag_cap // page_size))


def builtin_defaults(host: str) -> dict[str, Any]:
    """What imagebot assumes about ``host`` when the file says nothing."""
    out = dict(_FALLBACK)
    if is_loopback_host(host):
        out.update(_LOOPBACK)
    out.update(_PUBLIC.get(host, {}))
    for suffix, values in _PUBLIC_SUFFIXES.items():
        if host.split(":")[0].endswith(suffix):
            out.update(values)
    return out


class RegistriesSettings(BaseModel):
    """The whole ``registries.yaml``: ``defaults`` and per-host ``registries``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: RegistrySettings = RegistrySettings()
    registries: dict[str, RegistrySettings] = Field(default_factory=dict)
    insecure_registries: frozenset[str] = Field(
        default=frozenset(), description="hosts given with --insecure-registry", exclude=True
    )

    @field_validator("registries")
    @classmethod
    def _hosts(cls, value: dict[str, RegistrySettings]) -> dict[str, RegistrySettings]:
        bad = [h for h in value if "/" in h or not h]
        if bad:
            raise ValueError(f"registry keys are hosts[:port] without a path, got {bad[0]!r}")
        # "index.docker.io" is Docker's alias of docker.io (distribution/reference).
        return {("docker.io" if h == "index.docker.io" else h): s for h, s in value.items()}

    def for_host(self, host: str) -> RegistryConfig:
        values = builtin_defaults(host)
        values["insecure"] = is_loopback_host(host)
        for layer in (self.defaults, self.registries.get(host)):
            if layer is not None:
                values.update(
                    {
                        k: v
                        for k, v in layer.model_dump(exclude={"credentials"}).items()
                        if v is not None
                    }
                )
        if host in self.insecure_registries:
            values["insecure"] = True
        if values["max_pages"] is None:
            values["max_pages"] = default_max_pages(values["tag_cap"], values["page_size"])
        return RegistryConfig(host=host, **values)

    def with_insecure(self, hosts: set[str] | frozenset[str]) -> RegistriesSettings:
        return self.model_copy(update={"insecure_registries": self.insecure_registries | hosts})


def load_registries(path: Path) -> RegistriesSettings:
    """Read and validate ``registries.yaml``; raise PolicyError naming file:line: field."""
    source = str(path)
    try:
        text = read_capped(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"{source}:1: cannot read: {exc}"]) from None
    return parse_registries(text, source=source)


def parse_registries(text: str, *, source: str) -> RegistriesSettings:
    doc = yamldoc.load_mapping(text, source=source, what="registries file")
    if doc is None:
        return RegistriesSettings()
    try:
        settings = RegistriesSettings.model_validate(yamldoc.plain_mapping(doc, source=source))
    except ValidationError as exc:
        fields = yamldoc.field_names(RegistriesSettings.model_json_schema())
        raise PolicyError(yamldoc.validation_problems(source, doc, exc, fields=fields)) from None
    blocks: list[tuple[tuple[str, ...], RegistrySettings]] = [(("defaults",), settings.defaults)]
    blocks += [(("registries", host), entry) for host, entry in settings.registries.items()]
    for at, entry in blocks:
        if entry.credentials is not None:
            line = yamldoc.line_of(doc, (*at, "credentials"))
            entry.credentials._at = f"{source}:{line}"
    return settings

"""The ``publish:`` and ``signing:`` blocks of a policy file: how changes leave imagebot.

``publish: commit`` (the short form) commits and pushes to ``repo.branch``; the long form
chooses pull-request mode and the forge that hosts the repo:

```yaml
publish:
  mode: pull-request
  forge: {type: github, project: acme/environments, token_env: GITHUB_TOKEN}
```

Pure models and checks; the publishers and forge clients that act on them live in
``imagebot.publisher`` and ``imagebot.forge``.
"""

from __future__ import annotations

import re
import string
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imagebot.core.reference import is_loopback_host

ForgeType = Literal["github", "gitlab", "gitea"]

DEFAULT_TITLE = "imagebot({environment}): {summary}"
TEMPLATE_FIELDS = frozenset({"environment", "summary", "branch", "base"})
BODY_FIELDS = TEMPLATE_FIELDS | {"table"}

# What git check-ref-format refuses, in the parts a branch name can get wrong.
_BAD_BRANCH = re.compile(
    r"(^[-/.])|([/.]$)|(\.\.)|(//)|(@\{)|([\s~^:?*\[\\\x00-\x1f\x7f])|(\.lock$)"
)
_URL_PATH = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/]+/(?P<path>.+)$")
_SCP_PATH = re.compile(r"^[^/@\s]+@[^/:\s]+:(?P<path>.+)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForgeSpec(_Model):
    """The forge hosting the environment repo, and the token to call its API with."""

    type: ForgeType = Field(description="github | gitlab | gitea (Forgejo speaks the Gitea API)")
    url: str | None = Field(
        default=None,
        description="API base URL; default: the type's public API (https://api.github.com,"
        " https://gitlab.com/api/v4, https://gitea.com/api/v1)",
    )
    project: str | None = Field(
        default=None, description="owner/name (GitLab: group/subgroup/name); default: from repo.url"
    )
    token_env: str | None = Field(default=None, description="environment variable with the token")
    token_file: str | None = Field(default=None, description="file holding the token")
    insecure: bool = Field(
        default=False,
        description="allow a plain-http url to a host that is not loopback (the token then"
        " travels unencrypted)",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^/\s]+(/[^/\s]+)+$", value):
            raise ValueError(f"expected owner/name, got {value!r}")
        return value

    @model_validator(mode="after")
    def _https(self) -> ForgeSpec:
        host = urlsplit(self.url or "").netloc.rpartition("@")[2]
        plain = (self.url or "").startswith("http://")
        if plain and not self.insecure and not is_loopback_host(host):
            raise ValueError(
                f"url: plain http to {host} would send the token unencrypted; use https,"
                " or set insecure: true"
            )
        return self

    @model_validator(mode="after")
    def _one_token(self) -> ForgeSpec:
        given = [n for n in ("token_env", "token_file") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of token_env, token_file"
                + (f" (got {', '.join(given)})" if given else " (no token configured)")
            )
        return self


class PublishSpec(_Model):
    """How an environment's changes are published."""

    mode: Literal["commit", "pull-request"] = Field(
        default="commit",
        description="commit: commit and push to repo.branch; pull-request: one branch and one"
        " pull request per environment, updated in place",
    )
    branch: str | None = Field(
        default=None,
        description="pull-request mode: the branch imagebot owns; default imagebot/<environment>",
    )
    forge: ForgeSpec | None = Field(default=None, description="pull-request mode: the forge's API")
    title: str = Field(
        default=DEFAULT_TITLE,
        description="pull request title; fields {environment} {summary} {branch} {base}",
    )
    body: str | None = Field(
        default=None,
        description="pull request body; fields {environment} {summary} {branch} {base} {table};"
        " default: a summary and the table of changes",
    )
    labels: tuple[str, ...] = Field(default=(), description="labels added to a new pull request")
    reviewers: tuple[str, ...] = Field(default=(), description="user names asked for review")
    draft: bool = Field(default=False, description="open pull requests as drafts")
    automerge: bool = Field(
        default=False,
        description="GitHub auto-merge / GitLab merge when the pipeline succeeds / Gitea merge"
        " when checks succeed",
    )

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str | None) -> str | None:
        if value is not None and (not value or _BAD_BRANCH.search(value)):
            raise ValueError(f"{value!r} is not a valid git branch name")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        _check_template(value, TEMPLATE_FIELDS)
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str | None) -> str | None:
        if value is not None:
            _check_template(value, BODY_FIELDS)
        return value

    @model_validator(mode="after")
    def _forge_for_pull_requests(self) -> PublishSpec:
        if self.mode == "pull-request" and self.forge is None:
            raise ValueError("mode pull-request needs a forge: {type, project, token_env}")
        return self

    def branch_for(self, environment: str) -> str:
        return self.branch or f"imagebot/{environment}"


class SigningSpec(_Model):
    """Sign imagebot's commits with git's own signing (``gpg.format``)."""

    key_file: str = Field(
        description="ssh: a private key file (OpenSSH format); openpgp: an ASCII-armoured"
        " secret key"
    )
    format: Literal["ssh", "openpgp"] = Field(default="ssh", description="ssh | openpgp")


def publish_short_form(value: Any) -> Any:
    """``publish: commit`` is ``publish: {mode: commit}``."""
    return {"mode": value} if isinstance(value, str) else value


def publish_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema of ``publish``: the short string form or the mapping."""
    ref = schema.pop("$ref", None) or schema.pop("allOf")[0]["$ref"]
    schema["anyOf"] = [{"enum": ["commit", "pull-request"], "type": "string"}, {"$ref": ref}]


def derive_project(repo_url: str) -> str | None:
    """``owner/name`` from an https, ssh or scp-like git URL; None for a path or file://."""
    if repo_url.startswith("file:"):
        return None
    match = _URL_PATH.match(repo_url) or _SCP_PATH.match(repo_url)
    if match is None:
        return None
    path = match["path"].strip("/").removesuffix(".git").strip("/")
    return path if "/" in path else None


def _check_template(value: str, allowed: frozenset[str]) -> None:
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
    except ValueError as exc:
        raise ValueError(f"invalid template {value!r}: {exc}") from None
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(
            f"unknown template field {{{unknown[0]}}}; known: "
            + ", ".join(f"{{{n}}}" for n in sorted(allowed))
        )

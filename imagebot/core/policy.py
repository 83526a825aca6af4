"""Policy files: one YAML document per environment, validated into immutable models.

Parsing keeps ruamel.yaml's line information so that every problem — invalid YAML, an
unknown key, a wrong type, a bad range — is reported as ``file:line: field: message``.
Pure: the caller reads the file and passes its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from imagebot.core import reference, yamldoc
from imagebot.core.durations import Duration, parse_duration
from imagebot.core.promote_policy import ENVIRONMENT_NAME as _NAME_RE
from imagebot.core.promote_policy import Promotion as Promotion  # re-exported
from imagebot.core.publish_policy import (
    PublishSpec,
    SigningSpec,
    publish_schema,
    publish_short_form,
)
from imagebot.core.repopattern import RepositoryPattern, compile_pattern, is_pattern
from imagebot.core.selection import (
    SelectionRule,
)
from imagebot.core.verify_policy import VerifySpec
from imagebot.errors import InvalidReference


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _rule_fields(block: str) -> dict[str, Any]:
    """Pydantic fields for the ``SelectionRule`` fields a policy writes in ``block`` (``""``:
    the image entry itself, ``"tags"``): each field is declared once, on ``SelectionRule``."""
    hints = get_type_hints(SelectionRule)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(SelectionRule):
        name = f.name
        if (f.metadata["block"] or "") == block:
            # min_age is written as a duration ("2d"): text here, a timedelta in the rule.
            kind = Duration | None if hints[f.name] == timedelta | None else hints[f.name]
            out[name] = (kind, Field(default=f.default, description=f.metadata["help"]))
    return out


class _TagFilterBase(_Model):
    @field_validator("exclude", mode="before", check_fields=False)
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value


class ImageRule(_Model):
    """What an image entry and an environment's ``defaults`` share: how a version is picked
    (the selection fields, generated below) and whether its digest is pinned."""

    digest: Literal["pin", "none"] = Field(
        default="none", description="pin: write tag@sha256:… so the image cannot move under it"
    )
    group: str | None = Field(
        default=None,
        pattern=_NAME_RE,
        description="promoted environments: images of one group are promoted together or not"
        " at all",
    )
    unhold: tuple[str, ...] = Field(
        default=(),
        description="versions whose hold (from a human rollback) is lifted, e.g. ['1.4.0']",
    )
    verify: VerifySpec | None = Field(
        default=None, description="signatures the image must carry (wins over the environment's)"
    )

    def rule(self) -> SelectionRule:
        """The selection rule this policy stands for (one object per policy, so the memos it
        keeps serve every cycle)."""
        return self._rule

    @cached_property
    def _rule(self) -> SelectionRule:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(SelectionRule):
            block = f.metadata["block"]
            values[f.name] = getattr(getattr(self, block) if block else self, f.name)
        min_age = values["min_age"]
        values["min_age"] = parse_duration(min_age) if min_age else None
        return SelectionRule(**values)


class _ImageEntry(ImageRule):
    """How one environment picks a version of one repository, or of every repository a
    pattern matches."""

    name: str = Field(
        pattern=_NAME_RE,
        description="name of this image policy; `# imagebot: <name>` markers refer to it",
    )
    repository: str = Field(
        description="image repository, e.g. ghcr.io/acme/backend or nginx; or a pattern where"
        " * is any text within one path component and ** any number of components, e.g."
        " ghcr.io/acme/* or **/redis"
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        try:
            if is_pattern(value):
                compile_pattern(value)
                return value
            ref = reference.parse(value)
        except InvalidReference as exc:
            raise ValueError(str(exc)) from None
        if ref.tag or ref.digest:
            raise ValueError(
                f"{value!r} has a tag or digest; give the repository only (e.g. {ref.familiar})"
            )
        return value

    @cached_property
    def pattern(self) -> RepositoryPattern | None:
        """The compiled pattern when ``repository`` is one, else None."""
        return compile_pattern(self.repository) if is_pattern(self.repository) else None

    @cached_property
    def normalized_repository(self) -> str:
        """``docker.io/library/nginx`` for ``nginx``; a pattern's normalised text."""
        if self.pattern is not None:
            return self.pattern.text
        return reference.normalize_repository(self.repository)


# The selection fields are generated from SelectionRule; type checkers see only the entry's own
# fields, so code reads selection fields through ``rule()``.
if TYPE_CHECKING:
    TagFilter = _TagFilterBase
    _ImageFields = _ImageEntry
    _DefaultsFields = ImageRule
else:
    TagFilter = create_model("TagFilter", __base__=_TagFilterBase, **_rule_fields("tags"))
    TagFilter.__doc__ = "Which tags an image policy considers at all."
    _ImageFields = create_model(
        "_ImageFields",
        __base__=_ImageEntry,
        tags=(TagFilter, Field(default_factory=TagFilter)),
        **_rule_fields(""),
    )
    _DefaultsFields = create_model(
        "_DefaultsFields",
        __base__=ImageRule,
        tags=(TagFilter, Field(default_factory=TagFilter)),
        **_rule_fields(""),
    )


class ImagePolicy(_ImageFields):
    """How one environment picks a version of one repository, or of every repository a
    pattern matches."""


class ImageDefaults(_DefaultsFields):
    """An environment's ``defaults``: every field of an image entry but its name and
    repository, for the images its files reference that no entry governs."""


class Author(_Model):
    name: str = "imagebot"
    email: str = "imagebot@localhost"


class RepoSpec(_Model):
    """The environment repo: where the manifests live."""

    url: str = Field(
        description="git URL or path of the environment repo; a relative path is resolved"
        " against the policy file's directory"
    )
    branch: str = Field(default="main", description="branch to read and push")
    path: str = Field(default=".", description="directory of this environment inside the repo")
    author: Author = Field(default_factory=Author, description="author and committer of commits")
    max_file_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="larger files are skipped with a problem"
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts:
            raise ValueError(f"{value!r} must be a relative path inside the repo")
        return value


class Schedule(_Model):
    """When the daemon (`imagebot serve`) runs this environment's cycle on its own."""

    every: str | None = Field(
        default=None, description="interval between cycles, e.g. 5m, 1h (default 5m)"
    )
    cron: str | None = Field(
        default=None, description="five-field crontab expression in UTC, e.g. '*/10 * * * *'"
    )
    jitter: str | None = Field(
        default=None,
        description="random delay added to each run, spreading load (default: a tenth of"
        " `every`, at most 1m; none for cron)",
    )

    @field_validator("every", "jitter")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() <= 0:
            raise ValueError(f"{value!r} must be longer than zero")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            # apscheduler's own parser (pure, imported only when a cron is written) so that
            # `imagebot check` rejects exactly what the daemon could not schedule.
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either `every` or `cron`, not both")
        return self


class EnvironmentPolicy(_Model):
    """One environment: its repo, how changes are published, and its image policies."""

    environment: str = Field(pattern=_NAME_RE, description="environment name, e.g. dev")
    repo: RepoSpec
    publish: PublishSpec = Field(
        default_factory=PublishSpec,
        description="commit (default) | pull-request, or the mapping {mode, branch, forge, …}",
        json_schema_extra=publish_schema,
    )
    promote: Promotion | None = Field(
        default=None, description="take versions from an upstream environment's history"
    )
    signing: SigningSpec | None = Field(default=None, description="sign imagebot's commits")
    verify: VerifySpec | None = Field(
        default=None, description="signatures and attestations every image must carry"
    )
    defaults: ImageDefaults | None = Field(
        default=None,
        description="rule for every image referenced in the environment's files that no"
        " entry of `images` governs",
    )
    images: tuple[ImagePolicy, ...] = Field(default=())
    detect: Literal["auto", "markers"] = Field(
        default="auto",
        description="auto: every image field of a watched repository, and every marker;"
        " markers: only fields carrying a marker (# imagebot: <image> or a Flux"
        " $imagepolicy comment), as Flux does",
    )
    marker_namespace: str | None = Field(
        default=None,
        description="the namespace this environment's Flux markers name"
        ' ({"$imagepolicy": "<namespace>:<image>"}); markers of other namespaces are left'
        " alone",
    )
    schedule: Schedule = Field(
        default_factory=Schedule,
        description="when `imagebot serve` runs this environment (default: every 5m)",
    )

    @field_validator("publish", mode="before")
    @classmethod
    def _publish_short_form(cls, value: Any) -> Any:
        return publish_short_form(value)

    @field_validator("images")
    @classmethod
    def _unique_names(cls, images: tuple[ImagePolicy, ...]) -> tuple[ImagePolicy, ...]:
        seen: set[str] = set()
        for image in images:
            if image.name in seen:
                raise ValueError(f"image policy name {image.name!r} is used twice")
            seen.add(image.name)
        return images

    def image(self, name: str) -> ImagePolicy | None:
        return next((i for i in self.images if i.name == name), None)


@dataclass(frozen=True)
class LoadedPolicy:
    """A validated environment policy and the file it came from."""

    source: str
    policy: EnvironmentPolicy
    #: line of every field written in ``source`` (``images[0].follow``: 12), read through
    #: :meth:`at`: a field left out is placed at its entry (``yamldoc.line_at``).
    lines: Mapping[str, int] = field(default_factory=dict)
    #: what is allowed but probably not meant, with file:line (``imagebot check`` shows them).
    warnings: tuple[str, ...] = ()

    def at(self, where: str) -> str:
        """``file:line`` of a field named as in ``lines``."""
        return f"{self.source}:{yamldoc.line_at(self.lines, where) or 1}"

    @property
    def name(self) -> str:
        return self.policy.environment


def rule_field_path(name: str) -> tuple[str, ...]:
    """Where a policy file writes the SelectionRule field ``name`` (``tags.include``)."""
    for f in dataclasses.fields(SelectionRule):
        if f.name == name:
            return (f.metadata["block"], name) if f.metadata["block"] else (name,)
    return (name,) if name else ()


def policy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a policy file, as published in imagebot/schema/."""
    schema = EnvironmentPolicy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://imagebot.dev/schema/policy.schema.json"
    schema["title"] = "imagebot environment policy"
    return schema

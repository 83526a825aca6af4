"""The ``promote:`` block of a policy file: the upstream environment a promoted one takes
its versions from, and the gates they pass first (soak, checks, windows, freezes).

```yaml
promote: {from: staging, soak: 24h, windows: ["Mon-Thu 09:00-16:00 Europe/Berlin"]}
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from imagebot.core import yamldoc
from imagebot.core.durations import Duration, parse_duration
from imagebot.core.windows import Period, parse_period

#: An environment's name, as ``environment:`` gives it and ``promote.from`` names it.
ENVIRONMENT_NAME = yamldoc.NAME_PATTERN


def _period(spec: str) -> str:
    parse_period(spec)
    return spec


#: A window or freeze, checked where it is written (errors name the list item's line).
PeriodText = Annotated[str, AfterValidator(_period)]


class Promotion(BaseModel):
    """Where a promoted environment's versions come from, and the gates they pass first."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str = Field(
        alias="from",
        pattern=ENVIRONMENT_NAME,
        description="the upstream environment whose history supplies the versions",
    )
    soak: Duration | None = Field(
        default=None, description="how long upstream must have run a version, e.g. 1h, 2d"
    )
    checks: tuple[Annotated[str, Field(min_length=1, pattern=r"\S")], ...] = Field(
        default=(),
        description="commit status contexts that must be success on the upstream commit",
    )
    windows: tuple[PeriodText, ...] = Field(
        default=(),
        description="promote only inside one of these, e.g. 'Mon-Thu 09:00-16:00 Europe/Berlin'",
    )
    freeze: tuple[PeriodText, ...] = Field(
        default=(),
        description="never promote inside these, e.g. '2026-12-20 .. 2027-01-04 Europe/Berlin'",
    )

    @field_validator("checks", "windows", "freeze", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @property
    def soak_time(self) -> timedelta:
        return parse_duration(self.soak) if self.soak else timedelta(0)

    def periods(self) -> tuple[tuple[Period, ...], tuple[Period, ...]]:
        """The parsed windows and freezes."""
        return (
            tuple(parse_period(w) for w in self.windows),
            tuple(parse_period(f) for f in self.freeze),
        )

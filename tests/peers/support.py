"""Running a peer's case through imagebot: convert with ``imagebot migrate``'s converters,
load the policy as ``imagebot check`` does, and choose from the same tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from imagebot.core.policy import LoadedPolicy, parse_policy
from imagebot.core.selection import TagInfo, select
from imagebot.migrate import CONVERTERS
from imagebot.migrate.model import checked

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def converted(tool: str, files: Mapping[str, str], repo_url: str | None = None) -> list[str]:
    """The policy files ``imagebot migrate --from tool`` writes for ``files``."""
    migration = CONVERTERS[tool](files, repo_url)
    return [checked(env, tool, f"{env.name}.yaml") for env in migration.environments]


def choose(
    policy_text: str,
    tags: Sequence[str],
    *,
    image: int = 0,
    created: Mapping[str, datetime] | None = None,
    digests: Mapping[str, str] | None = None,
    current: str | None = None,
) -> str | None:
    """The tag the converted policy's image picks from ``tags`` (build times and digests
    where the peer's case gives them), running ``current``."""
    loaded: LoadedPolicy = parse_policy(policy_text, source="converted.yaml")
    rule = loaded.policy.images[image].rule()
    infos = [
        TagInfo(name=t, created=(created or {}).get(t), digest=(digests or {}).get(t)) for t in tags
    ]
    return select(infos, rule, current=current, now=NOW).tag

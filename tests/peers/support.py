"""Running a peer's case through imagebot: convert with ``imagebot migrate``'s converters,
load the policy as ``imagebot check`` does, and choose from the same tags."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagebot.core.policy import LoadedPolicy
from imagebot.core.policy_file import parse_policy
from imagebot.core.selection import TagInfo, select
from imagebot.migrate import CONVERTERS
from imagebot.migrate.model import checked
from tests.support.cli import run_cli

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


def migrate_and_plan(tool: str, source: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """``imagebot migrate --from tool source``, ``check`` of what it wrote, then ``plan
    --output json`` over it: the environments planned (each step must succeed)."""
    policies = tmp_path / "policies"
    result = run_cli("migrate", "--from", tool, str(source), "--out-dir", str(policies))
    assert result.returncode == 0, result.stderr
    assert run_cli("check", "--policies", str(policies)).returncode == 0
    result = run_cli(
        "plan", "--policies", str(policies), "--cache-dir", str(tmp_path / "cache"),
        "--output", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    environments: list[dict[str, Any]] = json.loads(result.stdout)["environments"]
    return environments

"""Reading policy files from disk; validation itself is pure (imagebot.core.policy)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imagebot.core.envgraph import order_environments
from imagebot.core.policy import LoadedPolicy
from imagebot.core.policy_file import parse_policy
from imagebot.errors import PolicyError
from imagebot.livefile import read_capped

#: Files in a policies directory that are configuration, not environments.
NOT_ENVIRONMENTS = frozenset({"registries.yaml", "registries.yml"})

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_SCP_LIKE = re.compile(r"^[^/]+@[^/:]+:")
#: The environment a file that does not load meant to define (else its file name says).
_DECLARED = re.compile(r"""^environment:\s*["']?([a-z0-9-]+)""", re.M)


@dataclass(frozen=True)
class PolicySet:
    """Every environment that loaded, and every problem with the files that did not."""

    environments: tuple[LoadedPolicy, ...]
    problems: tuple[str, ...]
    #: every environment that loaded, even when ``environments`` is narrowed to a few
    #: (a promoted environment reads its upstream's history)
    catalog: tuple[LoadedPolicy, ...] = ()
    #: environments whose file did not load (its problems say why) -> that file
    broken: Mapping[str, str] = field(default_factory=dict)


def policy_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise PolicyError([f"{directory}: policies directory not found"])
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and p.name not in NOT_ENVIRONMENTS and p.is_file()
    )


def load_policies(directory: Path) -> PolicySet:
    """Load every environment file; a bad file stops only its own environment."""
    loaded: list[LoadedPolicy] = []
    problems: list[str] = []
    by_name: dict[str, str] = {}
    broken: dict[str, str] = {}  # environment -> its file that did not load
    for path in policy_files(directory):
        try:
            text = read_capped(path)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}:1: cannot read: {exc}")
            continue
        try:
            policy = parse_policy(text, source=str(path))
        except PolicyError as exc:
            problems.extend(exc.problems)
            declared = _DECLARED.search(text)
            broken[declared[1] if declared else path.stem] = str(path)
            continue
        if policy.name in by_name:
            first = by_name[policy.name]
            problems.append(f"{path}:1: environment: {policy.name!r} is already defined in {first}")
            continue
        by_name[policy.name] = str(path)
        loaded.append(policy)
    if not loaded and not problems:
        problems.append(f"{directory}: no policy files (*.yaml) found")
    # Upstream environments first; a broken promotion graph stops only the environments in it.
    ordered, graph_problems = order_environments(loaded, broken=broken)
    problems.extend(graph_problems)
    return PolicySet(environments=tuple(ordered), problems=tuple(problems), catalog=tuple(loaded),
                     broken=broken)  # fmt: skip


def resolve_repo_url(url: str, policy_file: str) -> str:
    """A URL as git takes it; a plain relative path is relative to the policy file."""
    if _SCHEME.match(url) or _SCP_LIKE.match(url) or Path(url).is_absolute():
        return url
    return str((Path(policy_file).resolve().parent / url).resolve())


def path_beside(raw: str, policy_file: str) -> Path:
    """A configured file: ``~`` expanded, a relative path taken from the policy's directory."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path(policy_file).resolve().parent / path

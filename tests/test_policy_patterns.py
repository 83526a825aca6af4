"""Repository patterns and environment defaults: matching, precedence, docs and `check`."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from imagebot.core.governing import govern, overlapping_patterns
from imagebot.core.policy import EnvironmentPolicy
from imagebot.core.policy_file import parse_policy
from imagebot.core.repopattern import compile_pattern
from imagebot.core.rewrite import locate
from imagebot.errors import PolicyError
from tests.support.cli import run_cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "policies.md"

# One reference per repository, on lines 5 to 10.
MANIFEST = """\
spec:
  template:
    spec:
      containers:
        - image: ghcr.io/acme/backend:1.0.0
        - image: ghcr.io/acme/api:1.0.0
        - image: redis:7.2.0
        - image: nginx:1.25.0
        - image: ghcr.io/acme/redis:1.0.0
        - image: quay.io/other/tool:1.0.0
"""


def policy(body: str) -> EnvironmentPolicy:
    text = "environment: dev\nrepo: {url: x}\n" + textwrap.dedent(body)
    return parse_policy(text, source="dev.yaml").policy


def governing(env: EnvironmentPolicy) -> dict[str, str]:
    """Repository -> the entry governing it, over MANIFEST's references."""
    governance = govern(env, {"app.yaml": locate(MANIFEST, source="app.yaml")})
    return {g.repository: g.entry for g in governance.groups}


def test_patterns_are_normalised_like_image_names() -> None:
    """Without a registry a pattern means Docker Hub; a leading ** means every registry."""
    assert compile_pattern("acme/*").text == "docker.io/acme/*"
    assert compile_pattern("redis*").text == "docker.io/library/redis*"
    assert compile_pattern("**/redis").text == "**/redis"
    assert compile_pattern("ghcr.io/acme/*").text == "ghcr.io/acme/*"


@pytest.mark.parametrize(
    ("pattern", "repository", "expected"),
    [
        ("ghcr.io/acme/*", "ghcr.io/acme/api", True),
        ("ghcr.io/acme/*", "ghcr.io/acme/team/api", False),
        ("ghcr.io/acme/**", "ghcr.io/acme/team/api", True),
        ("ghcr.io/acme/svc-*", "ghcr.io/acme/svc-7", True),
        ("ghcr.io/acme/svc-*", "ghcr.io/acme/api", False),
        ("**/redis", "docker.io/library/redis", True),
        ("**/redis", "ghcr.io/bitnami/redis", True),
        ("**/redis", "docker.io/library/redis-exporter", False),
        ("redis*", "docker.io/library/redis-exporter", True),
        ("acme/*", "docker.io/acme/web", True),
        ("acme/*", "ghcr.io/acme/web", False),
    ],
)
def test_star_stays_in_one_component_and_double_star_spans_many(
    pattern: str, repository: str, expected: bool
) -> None:
    """`*` matches within a path component, a `**` component any number of components."""
    assert compile_pattern(pattern).matches(repository) is expected


def test_bad_pattern_is_reported_at_its_field() -> None:
    """A `**` inside a component, or a tag in a pattern, is an error naming file:line:field."""
    text = "environment: dev\nrepo: {url: x}\nimages:\n  - {name: a, repository: 'ghcr.io/a**'}\n"
    with pytest.raises(PolicyError) as err:
        parse_policy(text, source="dev.yaml")
    (problem,) = err.value.problems
    assert problem.startswith("dev.yaml:4: images[0].repository: ")
    assert "'**' must be a whole path component" in problem
    text = text.replace("ghcr.io/a**", "ghcr.io/acme/*:1.0")
    with pytest.raises(PolicyError, match="not tags or digests"):
        parse_policy(text, source="dev.yaml")


def test_environment_needs_images_or_defaults() -> None:
    """A file with neither `images` nor `defaults` is an error; `defaults` alone is enough."""
    with pytest.raises(PolicyError, match="images: give at least one image entry, or `defaults`"):
        policy("")
    assert policy("defaults: {range: '^1'}\n").images == ()


def test_exact_entry_beats_pattern_which_beats_defaults() -> None:
    """Exact repository first, then the most specific pattern, then defaults; else nothing."""
    env = policy(
        """\
        defaults: {allow: patch}
        images:
          - {name: acme, repository: ghcr.io/acme/*}
          - {name: backend, repository: ghcr.io/acme/backend}
          - {name: redis, repository: "**/redis"}
        """
    )
    assert governing(env) == {
        "ghcr.io/acme/backend": "images[backend]",
        "ghcr.io/acme/api": "images[acme] (pattern ghcr.io/acme/*)",
        "ghcr.io/acme/redis": "images[acme] (pattern ghcr.io/acme/*)",
        "docker.io/library/redis": "images[redis] (pattern **/redis)",
        "docker.io/library/nginx": "defaults",
        "quay.io/other/tool": "defaults",
    }
    without_defaults = policy("images:\n  - {name: redis, repository: '**/redis'}\n")
    assert governing(without_defaults) == {
        "docker.io/library/redis": "images[redis] (pattern **/redis)",
        "ghcr.io/acme/redis": "images[redis] (pattern **/redis)",
    }


def test_equally_specific_patterns_go_to_the_first_listed() -> None:
    """On a specificity tie the pattern listed first governs, whichever order is used."""
    first = policy(
        "images:\n  - {name: one, repository: 'ghcr.io/*/api'}\n"
        "  - {name: two, repository: 'ghcr.io/acme/*'}\n"
    )
    assert compile_pattern("ghcr.io/*/api").specificity == 10
    assert compile_pattern("ghcr.io/acme/*").specificity == 11
    assert governing(first)["ghcr.io/acme/api"] == "images[two] (pattern ghcr.io/acme/*)"
    tie = policy(
        "images:\n  - {name: one, repository: 'ghcr.io/*/apis'}\n"
        "  - {name: two, repository: 'ghcr.io/acme/*'}\n"
    )
    text = MANIFEST.replace("acme/api:", "acme/apis:")
    governance = govern(tie, {"app.yaml": locate(text, source="app.yaml")})
    entries = {g.repository: g.entry for g in governance.groups}
    assert entries["ghcr.io/acme/apis"] == "images[one] (pattern ghcr.io/*/apis)"


def test_pattern_groups_name_images_by_repository_and_keep_file_order() -> None:
    """A pattern's group is named by its repository and lists its targets in file order."""
    env = policy("images:\n  - {name: acme, repository: 'ghcr.io/acme/*'}\n")
    text = MANIFEST + "        - image: ghcr.io/acme/api:0.9.0\n"
    governance = govern(env, {"app.yaml": locate(text, source="app.yaml")})
    api = next(g for g in governance.groups if g.repository == "ghcr.io/acme/api")
    assert api.image == "ghcr.io/acme/api"
    assert [(path, t.line, t.tag) for path, t in api.targets] == [
        ("app.yaml", 6, "1.0.0"),
        ("app.yaml", 11, "0.9.0"),
    ]


def test_unreferenced_entries_are_listed() -> None:
    """Entries (exact or pattern) that govern nothing are reported as unreferenced."""
    env = policy(
        "images:\n  - {name: gone, repository: ghcr.io/acme/gone}\n"
        "  - {name: none, repository: 'quay.io/nothing/*'}\n"
        "  - {name: acme, repository: 'ghcr.io/acme/*'}\n"
    )
    governance = govern(env, {"app.yaml": locate(MANIFEST, source="app.yaml")})
    assert [i.name for i in governance.unreferenced] == ["gone", "none"]


def test_overlapping_patterns_are_found() -> None:
    """Patterns that some repository matches both of are reported; disjoint ones are not."""
    env = policy(
        """\
        images:
          - {name: acme, repository: 'ghcr.io/acme/*'}
          - {name: redis, repository: '**/redis'}
          - {name: quay, repository: 'quay.io/**'}
          - {name: svc, repository: 'ghcr.io/acme/svc-*'}
          - {name: db, repository: 'ghcr.io/*/db-*'}
          - {name: tools, repository: 'ghcr.io/tools/*'}
        """
    )
    pairs = {(a.name, b.name) for a, b in overlapping_patterns(env)}
    assert pairs == {
        ("acme", "redis"),
        ("acme", "svc"),
        ("acme", "db"),
        ("redis", "quay"),
        ("redis", "tools"),
        ("db", "tools"),
    }


def test_check_warns_about_overlapping_patterns_naming_the_winner(tmp_path: Path) -> None:
    """`imagebot check` prints a warning per overlapping pair and still succeeds; an
    environment with only defaults checks fine."""
    (tmp_path / "dev.yaml").write_text(
        "environment: dev\nrepo: {url: x}\nimages:\n"
        "  - {name: acme, repository: 'ghcr.io/acme/*'}\n"
        "  - {name: redis, repository: '**/redis'}\n"
    )
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (
        f"warning: {tmp_path / 'dev.yaml'}: images[acme] (ghcr.io/acme/*) and images[redis]"
        " (**/redis) overlap; a repository matching both follows images[acme] (more specific)"
    ) in result.stderr
    (tmp_path / "dev.yaml").write_text("environment: dev\nrepo: {url: x}\ndefaults: {}\n")
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == f"ok: {tmp_path / 'dev.yaml'}: environment dev, 0 image(s) and defaults\n"
    )


def _docs_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Many images: repository patterns and defaults")
    return text[start : text.index("\n## ", start + 1)]


def test_docs_examples_load_and_their_precedence_holds() -> None:
    """Each YAML example of the docs' section loads; the first governs as the text says."""
    examples = re.findall(r"```yaml\n(.*?)```", _docs_section(), flags=re.S)
    assert len(examples) == 2
    loaded = [parse_policy(text, source="docs.yaml").policy for text in examples]
    assert governing(loaded[0]) == {
        "ghcr.io/acme/backend": "images[backend]",
        "ghcr.io/acme/api": "images[acme] (pattern ghcr.io/acme/*)",
        "ghcr.io/acme/redis": "images[acme] (pattern ghcr.io/acme/*)",
        "docker.io/library/redis": "images[redis] (pattern **/redis)",
        "docker.io/library/nginx": "defaults",
        "quay.io/other/tool": "defaults",
    }
    assert loaded[1].defaults is not None and loaded[1].defaults.digest == "pin"

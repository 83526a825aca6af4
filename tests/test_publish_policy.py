"""The publish and signing blocks of a policy file: forms, defaults, and errors at file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from imagebot.core.policy import policy_json_schema
from imagebot.core.policy_file import parse_policy
from imagebot.core.publish_policy import derive_project
from tests.support.cli import run_cli

HEAD = textwrap.dedent(
    """\
    environment: staging
    repo:
      url: https://github.com/acme/environments.git
    """
)
IMAGES = "images:\n  - name: app\n    repository: ghcr.io/acme/app\n"


def test_short_and_long_commit_forms_are_the_same() -> None:
    """`publish: commit`, `publish: {mode: commit}` and no publish at all mean commit mode."""
    forms = ["", "publish: commit\n", "publish: {mode: commit}\n"]
    specs = {parse_policy(HEAD + f + IMAGES, source="p.yaml").policy.publish for f in forms}
    assert len(specs) == 1
    assert next(iter(specs)).mode == "commit"


def test_pull_request_defaults() -> None:
    """A minimal pull-request policy gets branch imagebot/<env>, no API URL (the forge's
    public one is used) and the project from repo.url."""
    text = HEAD + "publish:\n  mode: pull-request\n  forge: {type: gitlab, token_env: T}\n" + IMAGES
    publish = parse_policy(text, source="p.yaml").policy.publish
    assert publish.branch_for("staging") == "imagebot/staging"
    assert publish.forge is not None and publish.forge.url is None
    assert derive_project("https://github.com/acme/environments.git") == "acme/environments"


@pytest.mark.parametrize(
    ("url", "project"),
    [
        ("https://github.com/acme/env.git", "acme/env"),
        ("git@gitlab.com:group/sub/env.git", "group/sub/env"),
        ("ssh://git@gitea.example.com:2222/acme/env", "acme/env"),
        ("file:///srv/git/env.git", None),
        ("/srv/git/env.git", None),
        ("https://example.com/env.git", None),
    ],
)
def test_project_is_derived_from_repo_url(url: str, project: str | None) -> None:
    """owner/name comes from an https, ssh or scp-like URL, never from a path."""
    assert derive_project(url) == project


BAD = {
    "forge-type": ("  forge: {type: bitbucket, token_env: T}\n", 7, "publish.forge.type"),
    "two-tokens": (
        "  forge:\n    type: github\n    token_env: T\n    token_file: /t\n",
        7,
        "publish.forge: give exactly one of token_env, token_file (got token_env, token_file)",
    ),
    "no-token": (
        "  forge:\n    type: github\n",
        7,
        "publish.forge: give exactly one of token_env, token_file (no token configured)",
    ),
    "no-forge": ("  branch: imagebot/x\n", 5, "publish: mode pull-request needs a forge"),
    "same-branch": (
        "  branch: main\n  forge: {type: github, token_env: T}\n",
        7,
        "publish.branch: must differ from repo.branch 'main'",
    ),
    "title-field": (
        "  title: '{env}'\n  forge: {type: github, token_env: T}\n",
        7,
        "publish.title: unknown template field {env}",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_reports_publish_problems_at_file_line(tmp_path: Path, case: str) -> None:
    """`imagebot check` names file:line and field for each publish problem."""
    block, line, expected = BAD[case]
    text = HEAD + "  branch: main\npublish:\n  mode: pull-request\n" + block + IMAGES
    (tmp_path / "staging.yaml").write_text(text)
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 1
    (error,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert error.startswith(f"error: {tmp_path / 'staging.yaml'}:{line}: {expected}"), error


def test_project_not_derivable_is_reported(tmp_path: Path) -> None:
    """A file:// repo with pull requests needs forge.project; check says so at its line."""
    text = (
        "environment: dev\nrepo: {url: 'file:///srv/env.git'}\npublish:\n  mode: pull-request\n"
        "  forge:\n    type: gitea\n    token_file: /run/secrets/gitea\n" + IMAGES
    )
    (tmp_path / "dev.yaml").write_text(text)
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 1
    assert f"error: {tmp_path / 'dev.yaml'}:5: publish.forge.project: cannot be derived" in (
        result.stderr
    )


def test_signing_block_is_validated(tmp_path: Path) -> None:
    """An unknown signing format is reported at its line."""
    text = HEAD + "signing: {key_file: /k, format: x509}\n" + IMAGES
    (tmp_path / "staging.yaml").write_text(text)
    result = run_cli("check", "--policies", str(tmp_path))
    expected = "signing.format: must be 'ssh' or 'openpgp' (got 'x509')"
    assert f"{tmp_path / 'staging.yaml'}:4: {expected}" in result.stderr


def test_schema_accepts_both_publish_forms_and_rejects_unknown_keys() -> None:
    """Editors using the schema accept `publish: commit` and the mapping, and flag a typo."""
    schema = policy_json_schema()
    yaml = YAML(typ="safe")
    long_form = (
        HEAD
        + "publish:\n  mode: pull-request\n  forge: {type: github, token_env: T}\n"
        + "signing: {key_file: /k, format: ssh}\n"
        + IMAGES
    )
    jsonschema.validate(yaml.load(HEAD + "publish: commit\n" + IMAGES), schema)
    jsonschema.validate(yaml.load(long_form), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.load(long_form.replace("mode:", "mood:")), schema)

"""Policy files: validation into immutable models, errors with file:line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from imagebot.config import load_policies
from imagebot.core.policy import EnvironmentPolicy, policy_json_schema
from imagebot.core.policy_file import parse_policy
from imagebot.errors import PolicyError
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]

VALID = textwrap.dedent(
    """\
    environment: dev
    repo:
      url: https://git.example.com/acme/env.git
      path: envs/dev
    images:
      - name: backend
        repository: ghcr.io/acme/backend
        range: "^1.0"
    """
)


def problems_of(text: str, source: str = "p.yaml") -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source=source)
    return info.value.problems


def test_valid_policy_loads_into_frozen_model() -> None:
    """A valid file becomes an immutable model with defaults filled in."""
    loaded = parse_policy(VALID, source="dev.yaml")
    policy = loaded.policy
    assert loaded.name == "dev"
    assert policy.repo.branch == "main"
    assert policy.images[0].normalized_repository == "ghcr.io/acme/backend"
    assert policy.images[0].rule().range == "^1.0"
    with pytest.raises(ValueError):
        policy.environment = "prod"  # type: ignore[misc]


def test_unknown_key_names_file_line_and_field() -> None:
    """An unknown key deep in the file is reported at its own line with its dotted path."""
    text = VALID.replace('    range: "^1.0"\n', '    range: "^1.0"\n    rnage: "^2"\n')
    assert problems_of(text) == ["p.yaml:9: images[0].rnage: unknown field; did you mean `range`?"]


def test_wrong_type_is_reported_with_its_line() -> None:
    """A boolean field given a list is rejected at the line of that field."""
    text = VALID + "    prerelease: [yes]\n"
    (problem,) = problems_of(text)
    assert problem.startswith("p.yaml:9: images[0].prerelease: ")


def test_bad_range_is_reported_at_the_range_line() -> None:
    """A range the semver parser rejects is an error on the range's line, not the file's."""
    text = VALID.replace('"^1.0"', '">=1.0 <<2"')
    (problem,) = problems_of(text)
    assert problem.startswith("p.yaml:8: images[0].range: ")


def test_bad_include_regex_points_at_tags_include() -> None:
    """An invalid include regex is reported under tags.include where the user wrote it."""
    text = VALID + "    tags:\n      include: '(unclosed'\n"
    (problem,) = problems_of(text)
    assert problem.startswith("p.yaml:10: images[0].tags.include: ")


def test_invalid_yaml_names_the_line() -> None:
    """Invalid YAML is reported with the line where the parser failed."""
    text = "environment: dev\nrepo: {url: x\nimages: []\n"
    (problem,) = problems_of(text)
    assert problem.startswith("p.yaml:3: invalid YAML")


def test_duplicate_keys_are_rejected() -> None:
    """A key given twice is an error rather than a silent last-wins."""
    text = VALID + "environment: prod\n"
    (problem,) = problems_of(text)
    assert "invalid YAML" in problem and "duplicate" in problem


def test_repository_with_tag_is_rejected() -> None:
    """A repository must not carry a tag: the policy decides the version."""
    text = VALID.replace("ghcr.io/acme/backend", "ghcr.io/acme/backend:1.0")
    (problem,) = problems_of(text)
    assert problem.startswith("p.yaml:7: images[0].repository: ")
    assert "tag or digest" in problem


def test_duplicate_image_names_and_bad_duration() -> None:
    """An unreadable min_age, and two image policies with one name, are reported."""
    (problem,) = problems_of(VALID + "    min_age: soon\n")
    assert problem.startswith("p.yaml:9: images[0].min_age: ") and "'soon'" in problem
    (problem,) = problems_of(VALID + "  - name: backend\n    repository: ghcr.io/acme/other\n")
    assert problem.startswith("p.yaml:5: images: ") and "'backend' is used twice" in problem


def test_path_must_stay_inside_the_repo() -> None:
    """An environment path that climbs out of the repo is refused."""
    (problem,) = problems_of(VALID.replace("envs/dev", "../elsewhere"))
    assert problem.startswith("p.yaml:4: repo.path: ")


def test_one_bad_file_stops_only_its_environment(tmp_path: Path) -> None:
    """Loading a directory keeps the valid environments when another file is broken."""
    (tmp_path / "dev.yaml").write_text(VALID)
    (tmp_path / "prod.yaml").write_text("environment: prod\n  bad: indent\n")
    (tmp_path / "registries.yaml").write_text("registries: {}\n")
    loaded = load_policies(tmp_path)
    assert [p.name for p in loaded.environments] == ["dev"]
    assert len(loaded.problems) == 1 and loaded.problems[0].startswith(str(tmp_path / "prod.yaml"))


def test_check_reports_three_errors_and_fails(tmp_path: Path) -> None:
    """`imagebot check` prints an unknown key, a bad range and invalid YAML, each with file:line."""
    (tmp_path / "a-unknown.yaml").write_text(VALID.replace("path: envs/dev", "pth: envs/dev"))
    (tmp_path / "b-range.yaml").write_text(
        VALID.replace("environment: dev", "environment: staging").replace('"^1.0"', '"^^1"')
    )
    (tmp_path / "c-invalid.yaml").write_text("environment: prod\nrepo: [unclosed\n")
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3, result.stderr
    assert errors[0].startswith(f"error: {tmp_path / 'a-unknown.yaml'}:4: repo.pth: unknown field")
    assert errors[1].startswith(f"error: {tmp_path / 'b-range.yaml'}:8: images[0].range: ")
    assert errors[2].startswith(f"error: {tmp_path / 'c-invalid.yaml'}:3: invalid YAML")


def test_check_reports_every_problem_of_a_file_at_once_in_plain_words(tmp_path: Path) -> None:
    """Type errors no longer hide range errors: one `check` reports them all, in file order,
    in plain sentences (no pydantic wording), with a "did you mean" for a misspelt field."""
    path = tmp_path / "dev.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            environment: Dev_1
            repo: {url: ./x}
            images:
              - name: backend
                repository: ghcr.io/acme/backend
                prerelease: maybe
                rnage: "^1"
              - name: api
                repository: 3
                range: "^^1"
              - name: web
                repository: ghcr.io/acme/web
                range: "^^2"
                digest: pinned
            """
        )
    )
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    cannot_read = "(expected a comparison such as '>=1.2', '^1', '~1.2.3', '1.x' or '*')"
    assert errors == [
        f"error: {path}:1: environment: must be lowercase letters, digits and dashes, starting"
        " and ending with a letter or digit (got 'Dev_1')",
        f"error: {path}:6: images[0].prerelease: must be true or false (got 'maybe')",
        f"error: {path}:7: images[0].rnage: unknown field; did you mean `range`?",
        f"error: {path}:9: images[1].repository: must be text (got 3)",
        f"error: {path}:10: images[1].range: range '^^1': cannot read '^^1' {cannot_read}",
        f"error: {path}:13: images[2].range: range '^^2': cannot read '^^2' {cannot_read}",
        f"error: {path}:14: images[2].digest: must be 'pin' or 'none' (got 'pinned')",
    ]
    assert "7 problem(s) found" in result.stderr


def test_check_session_in_the_docs_is_the_real_output(tmp_path: Path) -> None:
    """docs/policies.md's `imagebot check` session is what check prints for the files it
    describes: every problem of dev.yaml at once, and prod's promotion naming dev as broken."""
    doc = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    shown = doc.split("```console\n$ imagebot check\n", 1)[1].split("```", 1)[0].splitlines()
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        "environment: dev\nrepo: {url: ./x}\nimages:\n"
        "  - name: backend\n    repository: ghcr.io/acme/backend\n"
        '    prerelease: maybe\n    rnage: "^1"\n'
        '  - name: api\n    repository: ghcr.io/acme/api\n    range: "^^1"\n'
    )
    (policies / "prod.yaml").write_text(
        "environment: prod\nrepo: {url: ./x}\npromote: {from: dev}\n"
        "images: [{name: backend, repository: ghcr.io/acme/backend}]\n"
    )
    (policies / "staging.yaml").write_text(
        "environment: staging\nrepo: {url: ./x}\nimages: [{name: api, repository: nginx}]\n"
    )
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [line for line in shown if line.startswith("ok: ")]
    assert result.stderr.splitlines() == [line for line in shown if not line.startswith("ok: ")]


def test_example_policies_pass_check() -> None:
    """The example policies shipped in policies/ are valid."""
    result = run_cli("check", "--policies", str(ROOT / "policies"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok: ") == 3


def test_published_schema_is_current() -> None:
    """The JSON Schema file shipped for editors is the one the models define."""
    shipped = json.loads((ROOT / "imagebot/schema/policy.schema.json").read_text())
    assert shipped == policy_json_schema()


def test_schema_accepts_examples_and_rejects_unknown_keys() -> None:
    """Editors using the schema accept the example policies and flag an unknown key."""
    schema = policy_json_schema()
    yaml = YAML(typ="safe")
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        jsonschema.validate(yaml.load(path.read_text()), schema)
    bad = yaml.load(VALID)
    bad["images"][0]["colour"] = "blue"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_schema_command_prints_the_schema() -> None:
    """`imagebot schema` prints the same schema as a JSON document."""
    result = run_cli("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"] == "imagebot environment policy"
    assert (
        EnvironmentPolicy.model_json_schema()["properties"].keys()
        == json.loads(result.stdout)["properties"].keys()
    )


def test_check_validates_registries_yaml_beside_the_policies(tmp_path: Path) -> None:
    """A typo in registries.yaml beside the policies fails `check` with file:line: field."""
    (tmp_path / "dev.yaml").write_text(VALID)
    (tmp_path / "registries.yaml").write_text("registries:\n  ghcr.io:\n    insecur: true\n")
    result = run_cli("check", "--policies", str(tmp_path))
    assert result.returncode == 1
    assert (
        f"error: {tmp_path / 'registries.yaml'}:3: registries.ghcr.io.insecur: unknown field"
        in result.stderr
    )

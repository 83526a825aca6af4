"""The command line: version, usage errors, and logs as JSON when not on a terminal."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import imagebot
from tests.support.cli import run_cli


def test_version() -> None:
    """`imagebot --version` prints the package version."""
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"imagebot {imagebot.__version__}"


def test_no_command_is_a_usage_error() -> None:
    """Running without a subcommand prints help to stderr and exits 2."""
    result = run_cli()
    assert result.returncode == 2
    assert "usage: imagebot" in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    """An unknown option exits 2, as the README documents."""
    assert run_cli("check", "--no-such-option").returncode == 2


def test_logs_are_json_lines_off_a_terminal(tmp_path: Path) -> None:
    """Without a terminal, every log line on stderr is a JSON object with an event name."""
    (tmp_path / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {{url: {tmp_path / "nowhere.git"}}}
            images:
              - {{name: app, repository: 127.0.0.1:1/acme/app}}
            """
        )
    )
    result = run_cli("plan", "--policies", str(tmp_path), "--cache-dir", str(tmp_path / "c"))
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert events, result.stderr
    assert all("event" in e and "level" in e and "timestamp" in e for e in events)
    assert any(e["event"] == "repo_unavailable" and e["environment"] == "dev" for e in events)
    assert "error: " in result.stdout and "nowhere.git" in result.stdout


def test_missing_policies_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A policies directory that does not exist is named in one error line, no traceback."""
    for command in ("check", "plan", "apply"):
        result = run_cli(command, "--policies", str(tmp_path / "nope"))
        assert result.returncode == 1
        assert result.stderr == f"error: {tmp_path / 'nope'}: policies directory not found\n"


def test_command_names_follow_module_names() -> None:
    """Each command's NAME is its module name with dashes, which lets main import only it."""
    from imagebot.cli.main import COMMANDS, _load

    assert {name: _load(name).NAME for name in COMMANDS} == {
        name: name.replace("_", "-") for name in COMMANDS
    }


def test_global_options_before_the_command_still_work() -> None:
    """Options given before the command word are parsed with only that command loaded."""
    result = run_cli("--log-format", "json", "--log-level", "error", "check", "--help")
    assert result.returncode == 0
    assert "usage: imagebot check" in result.stdout

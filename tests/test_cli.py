"""The command line: version, usage errors, and logs as JSON when not on a terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import imagebot
from tests.support.cli import ROOT, run_cli


def test_version() -> None:
    """`python -m imagebot --version`, in a new interpreter, prints the package version."""
    result = run_cli("--version", fresh=True)
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


def unreachable_policy(tmp_path: Path) -> tuple[str, ...]:
    """A policy whose repo and registry do not exist; the CLI arguments that use it."""
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
    return ("--policies", str(tmp_path), "--cache-dir", str(tmp_path / "c"))


def test_logs_are_json_lines_off_a_terminal(tmp_path: Path) -> None:
    """Without a terminal, every log line on stderr is a JSON object with an event name."""
    args = unreachable_policy(tmp_path)
    result = run_cli("--log-level", "info", "plan", *args)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    events = [json.loads(line) for line in lines if not line.startswith("error: ")]
    assert events, result.stderr
    assert all("event" in e and "level" in e and "timestamp" in e for e in events)
    assert any(e["event"] == "repo_unavailable" and e["environment"] == "dev" for e in events)


def test_each_error_is_said_once_on_stderr_and_stdout_keeps_results(tmp_path: Path) -> None:
    """At the default log level a failing environment gives exactly one line on stderr, its
    error: line naming the environment and repo; stdout has no error line."""
    args = unreachable_policy(tmp_path)
    for command in ("plan", "apply", "status"):
        result = run_cli(command, *args, env={"IMAGEBOT_LOG_FORMAT": "auto"})
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: dev: ") and "nowhere.git" in line, result.stderr
        assert "error" not in result.stdout, result.stdout


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


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    """`-e nosuch` names the environments the policies directory does define."""
    for env in ("dev", "staging"):
        (tmp_path / f"{env}.yaml").write_text(
            f"environment: {env}\nrepo: {{url: ./x}}\nimages: [{{name: a, repository: nginx}}]\n"
        )
    result = run_cli("check", "--policies", str(tmp_path), "-e", "nosuch")
    assert result.returncode == 1
    assert f"error: {tmp_path}: no environment named 'nosuch' (known: dev, staging)" in (
        result.stderr
    ), result.stderr


def test_building_the_package_warns_about_nothing(tmp_path: Path) -> None:
    """`pip wheel` of the project (as `pip install .` builds it) prints no deprecation
    warning: the license is an SPDX string, not the deprecated table."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "imagebot", source / "imagebot", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "deprecated" not in (result.stdout + result.stderr).lower(), result.stderr
    assert list(tmp_path.glob("imagebot-*.whl"))


def test_log_defaults_per_command() -> None:
    """serve logs JSON at info; one-shot commands log warnings (human lines on a terminal)
    and leave out the events they print as error: lines, unless asked for info or JSON."""
    from imagebot.cli.main import REPORTED_EVENTS, log_settings

    assert log_settings("serve", None, None) == ("info", "json", frozenset())
    assert log_settings("plan", None, None) == ("warning", "auto", REPORTED_EVENTS)
    assert log_settings("status", "info", "json") == ("info", "json", frozenset())
    assert log_settings("apply", "debug", None) == ("debug", "auto", frozenset())
    assert "repo_unavailable" in REPORTED_EVENTS

"""The ``imagebot select`` command, run as a subprocess exactly as a user would."""

from __future__ import annotations

from tests.support.cli import run_cli

ISSUE_TAGS = "1.0.0\n1.1.0\n2.0.0-rc.1\n2.0.0\nlatest\n"


def test_caret_range_prints_highest_in_major_one() -> None:
    """Acceptance 1a: ^1 over the issue's tags prints 1.1.0 and exits 0."""
    result = run_cli("select", "--strategy", "semver", "--range", "^1", input=ISSUE_TAGS)
    assert (result.returncode, result.stdout) == (0, "1.1.0\n")


def test_prerelease_flag_still_prefers_the_release() -> None:
    """Acceptance 1b: >=1 with prereleases allowed prints the release 2.0.0, not 2.0.0-rc.1."""
    result = run_cli(
        "select", "--strategy", "semver", "--range", ">=1", "--prerelease", input=ISSUE_TAGS
    )
    assert (result.returncode, result.stdout) == (0, "2.0.0\n")


def test_running_prerelease_moves_to_its_release() -> None:
    """Acceptance 1c: running 2.0.0-rc.1, the release 2.0.0 is chosen (renovate#20106)."""
    result = run_cli(
        "select",
        "--strategy",
        "semver",
        "--range",
        ">=1",
        "--prerelease",
        "--current",
        "2.0.0-rc.1",
        input=ISSUE_TAGS,
    )
    assert (result.returncode, result.stdout) == (0, "2.0.0\n")


def test_nothing_qualifies_exits_one_with_empty_stdout() -> None:
    """When no tag satisfies the range the command exits 1 and prints nothing on stdout."""
    result = run_cli("select", "--strategy", "semver", "--range", "^3", input=ISSUE_TAGS)
    assert (result.returncode, result.stdout) == (1, "")


def test_explain_names_a_reason_for_every_tag() -> None:
    """Acceptance 2: --explain writes one line per input tag, each with its verdict."""
    result = run_cli("select", "--range", "^1", "--explain", input=ISSUE_TAGS)
    assert result.returncode == 0
    assert result.stdout == "1.1.0\n"
    lines = result.stderr.splitlines()
    by_tag = {line.split()[1]: line for line in lines[1:]}
    assert set(by_tag) == {"1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0", "latest"}
    assert "chosen" in by_tag["1.1.0"]
    assert "prerelease" in by_tag["2.0.0-rc.1"]
    assert "outside range '^1'" in by_tag["2.0.0"]
    assert "mutable" in by_tag["latest"]
    assert "ranks below" in by_tag["1.0.0"]


def test_invalid_range_exits_two_and_names_the_field() -> None:
    """A range that cannot be read is a usage error (exit 2) naming the range field."""
    result = run_cli("select", "--range", ">=1 <<2", input=ISSUE_TAGS)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "(range)" in result.stderr


def test_newest_build_reads_creation_times_from_stdin() -> None:
    """Lines may carry a creation time; newest-build picks the newest and skips `latest`."""
    tags = (
        "main-aaa1111 2024-05-01T10:00:00Z\n"
        "main-bbb2222 2024-05-03T10:00:00Z\n"
        "latest 2024-05-03T10:00:00Z\n"
        "main-ccc3333 2024-05-02T10:00:00Z\n"
    )
    result = run_cli("select", "--strategy", "newest-build", input=tags)
    assert (result.returncode, result.stdout) == (0, "main-bbb2222\n")


def test_min_age_uses_the_given_now() -> None:
    """--min-age with --now rejects tags younger than the minimum age."""
    tags = "1.0.0 2024-05-01T00:00:00Z\n1.1.0 2024-05-09T12:00:00Z\n"
    result = run_cli("select", "--min-age", "24h", "--now", "2024-05-10T00:00:00Z", input=tags)
    assert (result.returncode, result.stdout) == (0, "1.0.0\n")


def test_digest_strategy_reads_digest_column() -> None:
    """--strategy digest --follow prints the followed tag when stdin gives its digest."""
    tags = f"latest - sha256:{'a' * 64}\n1.0.0 - sha256:{'b' * 64}\n"
    result = run_cli("select", "--strategy", "digest", "--follow", "latest", input=tags)
    assert (result.returncode, result.stdout) == (0, "latest\n")


def test_extract_and_numeric_from_the_command_line() -> None:
    """--include with a named group and --extract order Flux-style tags by their number."""
    tags = "main-abc1234-100\nmain-def5678-250\nmain-0123abc-99\nlatest\n"
    result = run_cli(
        "select",
        "--strategy",
        "numeric",
        "--include",
        r"^main-[a-f0-9]+-(?P<ts>\d+)$",
        "--extract",
        "$ts",
        input=tags,
    )
    assert (result.returncode, result.stdout) == (0, "main-def5678-250\n")


def test_bad_stdin_line_is_a_usage_error() -> None:
    """A stdin line with an unreadable creation time exits 2 and names the line."""
    result = run_cli("select", input="1.0.0 yesterday\n")
    assert result.returncode == 2
    assert "line 1" in result.stderr


def test_keep_precision_is_on_by_default_and_can_be_turned_off() -> None:
    """Running 12.14 with 12.15 and 12.15.0 listed, select keeps the precision (12.15) as a
    policy file does by default; --no-keep-precision (with --partial) prefers 12.15.0."""
    tags = "12.14\n12.15\n12.15.0\n"
    result = run_cli("select", "--current", "12.14", input=tags)
    assert (result.returncode, result.stdout) == (0, "12.15\n")
    result = run_cli("select", "--current", "12.14", "--no-keep-precision", "--partial", input=tags)
    assert (result.returncode, result.stdout) == (0, "12.15.0\n")

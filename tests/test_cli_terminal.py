"""What a person at a terminal sees: progress while a cycle runs (rich, on stderr, only on a
terminal), no log lines mixed into tables and diffs, and the step logs for everyone else."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import structlog.testing

from imagebot import logs, progress
from imagebot.cli import progressbar
from tests.support.cli import ROOT, run_cli
from tests.support.gitenv import make_remote
from tests.support.registry import Registry, push_image

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _setup(tmp_path: Path, registry: Registry) -> tuple[Path, str]:
    repository = f"acme/tty-{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:8]}"
    image = f"{registry.host}/{repository}"
    for tag in ("1.0.0", "1.1.0"):
        push_image(registry, repository, tag)
    remote = make_remote(tmp_path, {"envs/dev/app.yaml": f"image: {image}:1.0.0\n".encode()})
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        f"environment: dev\nrepo: {{url: {remote}, path: envs/dev}}\n"
        f"images: [{{name: app, repository: {image}, range: '^1.0'}}]\n"
    )
    return policies, image


def _on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe): (code, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBOT_LOG")}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "120"
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagebot", *args],
        stdout=subprocess.PIPE, stderr=child, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(child)
    seen = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: the child is done with it
            break
        if not chunk:
            break
        seen += chunk
    os.close(main)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), ANSI.sub("", seen.decode(errors="replace"))


def test_status_and_plan_on_a_terminal_print_no_log_lines(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """On a terminal, at the default level, `status` and `plan` write their table and diff
    to stdout clean, and stderr carries no log line (no info events above the table)."""
    policies, image = _setup(tmp_path, shared_registry)
    args = ("--policies", str(policies), "--cache-dir", str(tmp_path / "cache"))
    code, out, err = _on_a_terminal("status", *args)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["ENVIRONMENT", "IMAGE", "RUNNING", "SINCE", "NEXT",
                                           "STATE"]  # fmt: skip
    assert "\x1b" not in out
    for word in ("info", "tags_listed", "fetched", "cloned", "event"):
        assert word not in err, err
    code, out, err = _on_a_terminal("plan", *args)
    assert code == 0, err
    assert f"+image: {image}:1.1.0" in out.splitlines()
    assert "info" not in err and "tags_listed" not in err, err


def test_progress_is_drawn_only_on_a_terminal() -> None:
    """A step and a counter draw on a terminal (rich, forced here) and draw nothing on a
    pipe, where the command's stderr stays empty."""
    log = logs.get_logger("test")
    for force, drawn in ((True, True), (False, False)):
        stream = io.StringIO()
        with progressbar.shown(stream, force=force), structlog.testing.capture_logs():
            counter = progress.Counter("environments planned", 2)
            with progress.step(log, "clone_started", "cloned", "clone https://example.com/env"):
                counter.advance()
            counter.advance()
            counter.close()
        text = ANSI.sub("", stream.getvalue())
        assert ("clone https://example.com/env" in text) is drawn, text
        assert ("environments planned" in text) is drawn, text
        if not drawn:
            assert stream.getvalue() == ""


def test_clone_fetch_and_listing_log_a_start_at_debug_and_a_duration_at_info(
    tmp_path: Path, shared_registry: Registry
) -> None:
    """With --log-level debug, the first plan logs clone_started then cloned (with seconds),
    the next fetch_started then fetched, and each listing listing_tags then tags_listed."""
    policies, image = _setup(tmp_path, shared_registry)
    args = ("--policies", str(policies), "--cache-dir", str(tmp_path / "cache"))

    def events(*extra: str) -> list[dict[str, object]]:
        result = run_cli("--log-level", "debug", *extra, "plan", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stderr.splitlines()]

    first = [e for e in events() if e["event"] in ("clone_started", "cloned", "fetched")]
    assert [e["event"] for e in first] == ["clone_started", "cloned"]
    assert first[1]["level"] == "info" and isinstance(first[1]["seconds"], float)
    again = events()
    names = [e["event"] for e in again]
    assert names.index("fetch_started") < names.index("fetched")
    listed = next(e for e in again if e["event"] == "tags_listed")
    assert listed["count"] == 2 and listed["repository"] == image and "seconds" in listed
    assert names.index("listing_tags") < names.index("tags_listed")

"""CLI manners: a closed pipe is not a crash; `imagebot tags` reports errors cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.cli import ROOT, run_cli
from tests.support.registry import Registry, push_image


def test_schema_into_a_closed_pipe_ends_without_a_traceback() -> None:
    """`imagebot schema | head` when head has already gone: no BrokenPipeError traceback."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before imagebot writes a byte
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "imagebot", "schema"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr
    assert "BrokenPipeError" not in proc.stderr
    assert proc.returncode == 1


def test_tags_errors_name_the_repository_once_and_json_carries_them(
    registry: Registry, tmp_path: Path
) -> None:
    """A failing reference is reported once per line with its repository named once, and
    `-o json` maps it to its error instead of dropping it."""
    push_image(registry, "acme/app", "1.0.0")
    ok, missing = f"{registry.host}/acme/app", f"{registry.host}/acme/missing"
    cache = str(tmp_path / "c.db")
    result = run_cli("tags", ok, missing, "-o", "json", "--cache", cache)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc[ok] == ["1.0.0"]
    assert doc[missing]["error"].startswith(f"{missing}: tags: not found (404)")
    assert doc[missing]["error"].count("acme/missing") == 1
    line = next(x for x in result.stderr.splitlines() if x.startswith("error:"))
    assert line.startswith(f"error: {missing}: tags: not found (404)")
    assert line.count("acme/missing") == 1


def test_tags_error_names_a_short_reference_and_its_repository(tmp_path: Path) -> None:
    """A reference written short is named as written, followed by the repository it means."""
    result = run_cli("tags", "Bad_Name", "--cache", str(tmp_path / "c.db"), "-o", "json")
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert list(doc) == ["Bad_Name"]
    assert doc["Bad_Name"]["error"].startswith("Bad_Name: ")

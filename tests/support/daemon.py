"""``imagebot serve`` as a real subprocess: started, waited for, stopped with a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli import ROOT
from tests.support.registry import free_port


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    This waits for an event in another process (a push, a commit), not for time to pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    url: str
    output: Path

    def log_text(self) -> str:
        return self.output.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == event]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.post(self.url + path, content=body, headers=headers or {}, timeout=5)

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 30) -> tuple[int, float]:
        """Send ``sig``; the exit code and the seconds the process took to exit."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start


@contextmanager
def run_daemon(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[Daemon]:
    """Start ``python -m imagebot serve ARGS`` (JSON logs) and wait until /healthz answers."""
    port = port or free_port()
    output = tmp_path / f"daemon-{port}.log"
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p
    )
    full_env["IMAGEBOT_LOG_FORMAT"] = "json"
    full_env.update(env or {})
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagebot", "serve", "--listen", f"127.0.0.1:{port}", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    daemon = Daemon(proc, f"http://127.0.0.1:{port}", output)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"imagebot serve exited {proc.returncode}: {daemon.log_text()}")
        try:
            return daemon.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=30, what="imagebot serve to answer /healthz")
        yield daemon
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

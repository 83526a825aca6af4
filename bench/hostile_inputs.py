"""Benchmark: how long imagebot takes to refuse hostile configuration and registry answers.

Each figure is the time from handing imagebot the input to its clear error (or, for the
file just under the size cap, to the loaded policy). Budget: every refusal well under a
second; a huge tag list is cut off at the size cap without holding more than it in memory.

Then ``imagebot serve`` (a subprocess) under hostile clients, each budget printed as met or
NOT MET: 200 connections each sending 1 MiB - 1 byte of a 1 MiB webhook body and stalling
(RSS growth < 40 MB, /healthz answering < 100 ms throughout, every connection closed by the
server within its 10 s deadline); 40 signed-sender payloads of 1 MiB, each pushing thousands
of repositories no policy watches (RSS growth < 10 MB once answered).

    python bench/hostile_inputs.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# bench/select.py would shadow the standard library's select module that asyncio needs:
# take bench/ off the path before anything imports it, and put the checkout first.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import multiprocessing
import resource
import socket
import tempfile
import threading
import time

import anyio
import httpx

from imagebot.core import yamldoc
from imagebot.core.policy_file import parse_policy
from imagebot.errors import PolicyError, RegistryError
from imagebot.registry.client import RegistryClient
from imagebot.registry.settings import RegistriesSettings, parse_registries
from tests.support.daemon import Daemon, run_daemon

POLICY = """\
environment: dev
repo: {url: /nowhere.git, branch: main, path: envs/dev}
images:
  - name: app
    repository: registry.example:5000/acme/app
"""
BUDGET_SECONDS = 1.0


def alias_bomb(levels: int) -> str:
    lines = ["bomb:", "  x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def timed(label: str, action: object) -> float:
    start = time.perf_counter()
    try:
        action()  # type: ignore[operator]
        outcome = "loaded"
    except PolicyError as exc:
        outcome = "refused: " + exc.problems[0].split(": ", 1)[1][:60]
    seconds = time.perf_counter() - start
    print(f"{label:<48} {seconds * 1000:8.1f} ms  {outcome}")
    return seconds


async def huge_tag_list(total_bytes: int, cap: int) -> tuple[float, str]:
    """A registry whose tags/list streams ``total_bytes``; the client stops at ``cap``."""
    chunk = json.dumps([f"1.0.{i}" for i in range(20_000)]).encode()[1:-1] + b","

    async def stream():  # type: ignore[no-untyped-def]
        yield b'{"name": "acme/app", "tags": ['
        sent = 0
        while sent < total_bytes:
            yield bytes(bytearray(chunk))  # a new object each time, as a socket gives
            sent += len(chunk)
        yield b'"end"]}'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Type": "application/json"}, content=stream())

    settings = RegistriesSettings.model_validate(
        {"registries": {"registry.example": {"max_response_bytes": cap}}}
    )
    start = time.perf_counter()
    async with RegistryClient(settings=settings, transport=httpx.MockTransport(handler)) as client:
        try:
            await client.list_tags("registry.example/acme/app")
            outcome = "listed"
        except RegistryError as exc:
            outcome = str(exc).split(": ", 2)[-1][:70]
    return time.perf_counter() - start, outcome


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


SECRET = "bench-webhook-secret"
DAEMON_POLICY = """\
environment: dev
repo: {url: /nowhere.git, branch: main, path: envs/dev}
schedule: {every: 24h}
images:
  - name: app
    repository: 127.0.0.1:9/acme/app
"""


def stall(host: str, port: int, connections: int, out: Any) -> None:
    """In a process of its own (so the clients' threads do not slow the /healthz probe):
    ``connections`` clients each send 1 MiB - 1 byte of a 1 MiB body, then stall; puts the
    seconds after which the server had closed each one."""
    head = (
        f"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: {1 << 20}\r\n\r\n"
    ).encode()
    start = time.monotonic()

    def client() -> None:
        try:
            with socket.create_connection((host, port), timeout=60) as sock:
                sock.sendall(head + b"x" * ((1 << 20) - 1))
                while sock.recv(65536):
                    pass
        except OSError:
            pass  # reset by the server that refused the body: closed all the same
        out.put(time.monotonic() - start)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


_PROBE = httpx.Client(timeout=5, headers={"Connection": "close"})


def healthz(d: Daemon) -> int:
    """The status of one GET /healthz on a new connection. One client serves every probe:
    a new httpx client per probe builds a TLS context first (tens of milliseconds), which
    would be timed as the daemon's."""
    return _PROBE.get(d.url + "/healthz").status_code


def stalled_bodies(d: Daemon, pid: int, connections: int = 200, deadline: float = 10.0) -> bool:
    """200 stalled 1 MiB webhook bodies: memory, /healthz latency, closing by the server."""
    host, port = d.url.removeprefix("http://").split(":")
    results: Any = multiprocessing.get_context("fork").Queue()
    clients = multiprocessing.get_context("fork").Process(
        target=stall, args=(host, int(port), connections, results)
    )
    closed: list[float] = []
    start = time.monotonic()
    base = rss_mb(pid)
    clients.start()
    peak, slowest = base, 0.0
    while len(closed) < connections and time.monotonic() - start < deadline * 3:
        asked = time.perf_counter()
        ok = healthz(d) == 200
        slowest = max(slowest, time.perf_counter() - asked if ok else float("inf"))
        peak = max(peak, rss_mb(pid))
        while not results.empty():
            closed.append(results.get())
        time.sleep(0.05)
    clients.join()
    last = max(closed, default=float("inf")) if len(closed) == connections else float("inf")
    time.sleep(1)
    after = rss_mb(pid)
    print(
        f"{connections} stalled 1 MiB bodies: RSS {base:.0f} -> peak {peak:.0f} -> {after:.0f} MB"
    )
    checks = [
        (f"RSS growth {peak - base:.1f} MB < 40 MB", peak - base < 40),
        (f"/healthz slowest {slowest * 1000:.0f} ms < 100 ms", slowest < 0.1),
        (f"all closed by the server after {last:.1f} s < {deadline + 1:g} s", last < deadline + 1),
        (f"RSS after they left {after:.0f} MB within 10 MB of {base:.0f}", after - base < 10),
    ]
    for label, ok in checks:
        print(f"  {label:<60} {verdict(ok)}")
    return all(ok for _, ok in checks)


def flood(d: Daemon, pid: int, payloads: int = 40) -> bool:
    """``payloads`` authenticated Distribution envelopes of ~1 MiB, every push unwatched."""
    headers = {"Authorization": f"Bearer {SECRET}"}
    base = rss_mb(pid)
    for n in range(payloads):
        events = [
            {"id": f"{n}-{i}", "action": "push",
             "target": {"repository": f"flood/r{n}-{i}", "tag": "1.0"}}
            for i in range(9000)
        ]  # fmt: skip
        body = json.dumps({"events": events}).encode()[: 1 << 20]
        body = body if body.endswith(b"}") else json.dumps({"events": events[:8000]}).encode()
        d.post("/webhooks/distribution?registry=flood.example", body, headers)
    after = rss_mb(pid)
    lines = len(d.named("webhook_received"))
    ok = after - base < 10
    label = (
        f"{payloads} flood payloads: RSS growth {after - base:.1f} MB < 10 MB ({lines} log lines)"
    )
    print(f"  {label:<60} {verdict(ok)}")
    return ok


def read_env_file(remote: Path, cache: Path, out: Any) -> None:
    """In a process of its own (for its peak RSS): read the environment whose repo holds the
    200 MB file, once to clone (git's time, not imagebot's), then once timed."""
    from imagebot import logs
    from imagebot.config import load_policies
    from imagebot.git.workspace import read_workspace

    logs.configure(level="error")

    policies = cache / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(DAEMON_POLICY.replace("/nowhere.git", f"file://{remote}"))
    loaded = load_policies(policies).environments[0]
    read_workspace(loaded, cache / "repos")
    start = time.perf_counter()
    workspace = read_workspace(loaded, cache / "repos")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.put((seconds, peak, workspace.problems[0] if workspace.problems else "read"))


def huge_environment_file(size: int = 200 * 1024 * 1024) -> bool:
    """An environment repo with one image line plus ``size`` bytes of comments."""
    from tests.support.gitenv import make_remote

    with tempfile.TemporaryDirectory() as tmp:
        body = b"image: 127.0.0.1:9/acme/app:1.0.0\n# " + b"x" * size + b"\n"
        remote = make_remote(Path(tmp), {"envs/dev/app.yaml": body})
        del body
        results: Any = multiprocessing.get_context("fork").Queue()
        child = multiprocessing.get_context("fork").Process(
            target=read_env_file, args=(remote, Path(tmp), results)
        )
        child.start()
        seconds, peak, outcome = results.get()
        child.join()
    print(f"{size >> 20} MB environment file: {outcome}")
    checks = [
        (f"refused in {seconds * 1000:.0f} ms < 1000 ms", seconds < 1 and "skipped" in outcome),
        (f"peak RSS of the reading process {peak:.0f} MB < 150 MB", peak < 150),
    ]
    for label, ok in checks:
        print(f"  {label:<60} {verdict(ok)}")
    return all(ok for _, ok in checks)


def daemon_section() -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        policies = Path(tmp) / "policies"
        policies.mkdir()
        (policies / "dev.yaml").write_text(DAEMON_POLICY)
        with run_daemon(
            Path(tmp), "--policies", str(policies), "--cache-dir", str(Path(tmp) / "cache"),
            env={"IMAGEBOT_WEBHOOK_SECRET": SECRET},
        ) as d:  # fmt: skip
            pid = d.proc.pid
            time.sleep(2)  # let the startup cycle (against nothing) finish
            idle = []
            for _ in range(20):
                asked = time.perf_counter()
                healthz(d)
                idle.append(time.perf_counter() - asked)
            print(f"/healthz with no load: slowest of 20 {max(idle) * 1000:.0f} ms (this machine)")
            ok = stalled_bodies(d, pid)
            return flood(d, pid) and ok


def main() -> None:
    print(f"limits: {yamldoc.MAX_FILE_BYTES // 1024} KiB per file, {yamldoc.MAX_NODES:,} nodes")
    worst = 0.0
    for levels in (6, 9, 12):
        worst = max(
            worst,
            timed(
                f"policy file, alias bomb of {levels} levels",
                lambda levels=levels: parse_policy(POLICY + alias_bomb(levels), source="p.yaml"),
            ),
        )
    worst = max(
        worst,
        timed(
            "registries.yaml, alias bomb of 12 levels",
            lambda: parse_registries("defaults: {}\n" + alias_bomb(12), source="r.yaml"),
        ),
    )
    huge = POLICY + "# " + "x" * (yamldoc.MAX_FILE_BYTES * 3) + "\n"
    worst = max(
        worst,
        timed(
            "policy file of 3 MiB (one comment line)", lambda: parse_policy(huge, source="p.yaml")
        ),
    )
    under = POLICY + "# " + "x" * (yamldoc.MAX_FILE_BYTES - len(POLICY) - 10) + "\n"
    # Not a refusal: the longest a file within the cap can take, for the record.
    timed(
        "policy file just under 1 MiB (one comment line)",
        lambda: parse_policy(under, source="p.yaml"),
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, outcome = anyio.run(huge_tag_list, 1 << 30, 64 << 20)
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"{'tags/list streaming 1 GiB, cap 64 MiB':<48} {seconds * 1000:8.1f} ms  {outcome}")
    print(f"peak RSS growth while cutting it off: {grown:.0f} MiB")
    budget = f"budget {BUDGET_SECONDS * 1000:.0f} ms"
    print(f"slowest configuration refusal: {worst * 1000:.1f} ms ({budget})")
    file_ok = huge_environment_file()
    daemon_ok = daemon_section()
    if worst > BUDGET_SECONDS or not daemon_ok or not file_ok:
        raise SystemExit("over budget")


if __name__ == "__main__":
    main()

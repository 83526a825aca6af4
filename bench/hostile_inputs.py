"""Benchmark: how long imagebot takes to refuse hostile configuration and registry answers.

Each figure is the time from handing imagebot the input to its clear error (or, for the
file just under the size cap, to the loaded policy). Budget: every refusal well under a
second; a huge tag list is cut off at the size cap without holding more than it in memory.

    python bench/hostile_inputs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/select.py would shadow the standard library's select module that asyncio needs:
# take bench/ off the path before anything imports it, and put the checkout first.
sys.path.remove(str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json
import resource
import time

import anyio
import httpx

from imagebot.core import yamldoc
from imagebot.core.policy import parse_policy
from imagebot.errors import PolicyError, RegistryError
from imagebot.registry.client import RegistryClient
from imagebot.registry.settings import RegistriesSettings, parse_registries

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
    if worst > BUDGET_SECONDS:
        raise SystemExit("over budget")


if __name__ == "__main__":
    main()

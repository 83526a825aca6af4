"""Budgets of the code itself: size, layering, one cache, and the test suite's wall time.

Prints each figure with its budget and met / NOT MET:

- total lines of ``imagebot/**/*.py`` (<= 18,373) and the largest module (<= 450 lines);
- ``sqlite3.connect`` call sites in ``imagebot/`` (<= 1: the one cache);
- the import contracts of pyproject.toml (``lint-imports``: layers, a pure core, no cycles);
- with ``--suite``: the README's test command (``bash scripts/test.sh``), timed (<= 180 s).

    python bench/house.py [--suite]
"""

# ruff: noqa: E402  (the path must be fixed before the first import that pulls in ``select``)
from __future__ import annotations

import sys

# bench/select.py would shadow the stdlib module: put the checkout first (see registry_scan).
sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="store_true", help="also time the README's test command")
    args = parser.parse_args()
    modules = {
        p.relative_to(ROOT): len(p.read_text().splitlines())
        for p in sorted((ROOT / "imagebot").rglob("*.py"))
    }
    largest = max(modules, key=lambda p: modules[p])
    connects = sum((ROOT / p).read_text().count("sqlite3.connect(") for p in modules)
    contracts = subprocess.run(
        [str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, check=False
    )
    kept = (
        next(
            (line for line in contracts.stdout.splitlines() if "kept" in line and "broken" in line),
            contracts.stdout.strip().splitlines()[-1] if contracts.stdout.strip() else "no output",
        )
        .removeprefix("Contracts: ")
        .rstrip(".")
    )
    checks: list[tuple[str, str, bool]] = [
        (f"lines of imagebot/**/*.py ({len(modules)} modules)", f"{sum(modules.values()):,}",
         sum(modules.values()) <= 18_373),
        (f"largest module ({largest})", f"{modules[largest]}", modules[largest] <= 450),
        ("sqlite3.connect call sites", f"{connects}", connects <= 1),
        ("import contracts (lint-imports)", kept, contracts.returncode == 0),
    ]  # fmt: skip
    budgets = ["<= 18,373", "<= 450", "<= 1", "all kept"]
    if args.suite:
        start = time.monotonic()
        suite = subprocess.run(["bash", "scripts/test.sh", "-q"], cwd=ROOT, check=False)
        seconds = time.monotonic() - start
        checks.append(
            ("README's test command", f"{seconds:.0f} s, exit {suite.returncode}",
             seconds <= 180 and suite.returncode == 0)
        )  # fmt: skip
        budgets.append("<= 180 s, exit 0")
    for (label, value, met), budget in zip(checks, budgets, strict=True):
        print(f"{label:<58} {value:>22}  (budget {budget}) {'met' if met else 'NOT MET'}")
    ok = all(met for _, _, met in checks)
    print("budget " + ("met" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

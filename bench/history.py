"""Benchmark: reading an environment's history for promotion and holds.

Builds a repository with ``--commits`` commits (git fast-import): every other one changes
the image of ``envs/dev/app.yaml``, the rest change ``envs/prod`` (not read); ``envs/dev``
also holds ``--files`` other manifests. Then times, through a bare clone as imagebot keeps:

(a) a cold read — no cache: the newest 1,000 commits touching envs/dev, the oldest of them
    as a snapshot of every file;
(b) a warm read — the cache is current, nothing new;
(c) an incremental read — 20 new commits (10 touching envs/dev) since the cache was written;
(d) the replay that turns history into runs and holds, for ``--images`` images (one
    manifest each) over 1,000 commits that each change one manifest (every third by a
    person), without git.

    python bench/history.py [--commits 4000] [--files 50] [--images 1000]
"""

# ruff: noqa: E402
from __future__ import annotations

import sys

sys.path[0] = str(__import__("pathlib").Path(__file__).resolve().parents[1])

import argparse
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imagebot.cache import Cache
from imagebot.core.policy import ImagePolicy
from imagebot.core.promotion.history import HistoryCommit, Ref, runs_by_image
from imagebot.core.promotion.holds import holds_of
from imagebot.git.history import HISTORY_LIMIT, path_history
from imagebot.git.repo import EnvRepo

REPO = "ghcr.io/acme/app"


def manifest(name: str, tag: str) -> bytes:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
        f"  template:\n    spec:\n      containers:\n        - name: {name}\n"
        f"          image: {REPO}:{tag}\n"
    ).encode()


def fast_import(work: Path, commits: int, files: int, start: int) -> None:
    """Append ``commits`` commits to main through git fast-import."""
    out = bytearray()

    def blob(path: str, data: bytes) -> None:
        out.extend(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    for n in range(start, start + commits):
        msg = f"commit {n}\n\nImagebot-Environment: dev\n".encode()
        stamp = 1_700_000_000 + n * 60
        out.extend(f"commit refs/heads/main\ncommitter Bench <b@e> {stamp} +0000\n".encode())
        out.extend(f"data {len(msg)}\n".encode() + msg)
        if n == start and start > 0:
            out.extend(b"from refs/heads/main^0\n")
        if n == 0:
            for f in range(files):
                blob(f"envs/dev/other-{f}.yaml", manifest(f"other-{f}", "1.0.0"))
        env = "dev" if n % 2 == 0 else "prod"
        blob(f"envs/{env}/app.yaml", manifest("app", f"1.{n // 2}.0"))
        out.extend(b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=work, input=bytes(out), check=True)


def timed(repo: EnvRepo, cache: Cache | None) -> tuple[float, int]:
    repo.fetch()
    t0 = time.perf_counter()
    history = path_history(repo, "envs/dev", {REPO}, cache=cache)
    return time.perf_counter() - t0, len(history)


def replay(images: int, commits: int = 1000) -> tuple[float, int]:
    """Seconds to replay ``commits`` synthetic commits into runs and holds of every image,
    and how many runs there were."""
    policies = [
        ImagePolicy(name=f"img-{i}", repository=f"ghcr.io/acme/img-{i}") for i in range(images)
    ]
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def ref(i: int, tag: str) -> tuple[Ref, ...]:
        return (Ref(f"envs/dev/img-{i}.yaml", 9, f"ghcr.io/acme/img-{i}", None, tag, None),)

    history = [
        HistoryCommit(
            sha=f"{0:040x}",
            time=start,
            author="bench",
            trailers=(),
            files={f"envs/dev/img-{i}.yaml": ref(i, "1.0.0") for i in range(images)},
            snapshot=True,
        )
    ]
    for n in range(1, commits):
        i = (n * 7919) % images if n % 2 else n % 50  # half spread out, half on 50 images
        history.append(
            HistoryCommit(
                sha=f"{n:040x}",
                time=start + timedelta(minutes=n),
                author="bench",
                trailers=(("Imagebot-Environment", "dev"),) if n % 3 else (),
                files={f"envs/dev/img-{i}.yaml": ref(i, f"1.{(n // 50) % 5}.0")},
            )
        )
    t0 = time.perf_counter()
    runs = runs_by_image(policies, history)
    for p in policies:
        holds_of(p, history, runs[p.name])
    return time.perf_counter() - t0, sum(len(r) for r in runs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagebot-bench-history-") as tmp:
        source = Path(tmp) / "source.git"
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(source)], check=True)
        fast_import(source, args.commits, args.files, 0)
        repo = EnvRepo(str(source), "main", Path(tmp) / "clone")
        cache = Cache(Path(tmp) / "cache.sqlite")
        cold, read = timed(repo, cache)
        warm, _ = timed(repo, cache)
        fast_import(source, 20, 0, args.commits)
        incremental, after = timed(repo, cache)
        uncached, _ = timed(repo, None)
        print(
            f"repository: {args.commits} commits, half touching envs/dev ({args.files + 1} files)"
        )
        print(f"history limit: {HISTORY_LIMIT} commits; read: {read}, after 10 more: {after}")
        print(f"(a) cold read, no cache:      {cold * 1000:8.1f} ms")
        print(f"(b) warm read, cache current: {warm * 1000:8.1f} ms")
        print(f"(c) incremental, 10 new:     {incremental * 1000:8.1f} ms")
        print(f"    same without the cache:   {uncached * 1000:8.1f} ms")
        cache.close()
        print(f"cache file: {Path(cache.path).stat().st_size / 1024:.0f} KiB")
    seconds, runs = replay(args.images)
    print(
        f"(d) replay, {args.images} images x 1000 commits: {seconds * 1000:8.1f} ms ({runs} runs)"
    )


if __name__ == "__main__":
    main()

"""Run the imagebot CLI as a user would: a process of its own, with its own arguments,
environment, working directory, standard streams and exit code.

Starting Python and importing the CLI's libraries costs about half a second of CPU, paid by
each of the suite's few hundred CLI runs. So each test worker keeps a fork server that has
imported them once (``multiprocessing``'s forkserver, a fresh interpreter, not a fork of the
test process), and every run is a fresh fork of it: a new process that gets the run's
``argv``, environment and directory, stdin, stdout and stderr on files of its own, and calls
the same ``main`` as ``python -m imagebot``. ``fresh=True`` starts ``python -m imagebot``
instead, for what only a new interpreter shows (what start-up imports).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the fork server imports once: the CLI and everything its commands load.
PRELOAD = [
    "imagebot.cli.main",
    *(f"imagebot.cli.{p.stem}" for p in sorted((ROOT / "imagebot" / "cli").glob("[a-z]*.py"))),
]
_context: multiprocessing.context.ForkServerContext | None = None


def run_cli(
    *args: str,
    input: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``imagebot ARGS`` with this checkout first on the path; ``fresh``: in a new
    interpreter (``python -m imagebot``)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p
    )
    full_env.setdefault("IMAGEBOT_LOG_FORMAT", "json")
    if env:
        full_env.update(env)
    if fresh:
        return subprocess.run(
            [sys.executable, "-m", "imagebot", *args],
            input=input,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=full_env,
            timeout=timeout,
            check=False,
        )
    return _forked([*args], input, os.fspath(cwd) if cwd else os.getcwd(), full_env, timeout)


def _forked(
    args: list[str], input: str | None, cwd: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    with tempfile.TemporaryDirectory(prefix="imagebot-cli-") as scratch:
        streams = [os.path.join(scratch, name) for name in ("stdin", "stdout", "stderr")]
        Path(streams[0]).write_text(input or "")
        process = _context.Process(target=_run, args=(args, cwd, env, streams))
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["imagebot", *args], timeout)
        out, err = (Path(s).read_text() for s in streams[1:])
    return subprocess.CompletedProcess(["imagebot", *args], process.exitcode, out, err)


def _run(args: list[str], cwd: str, env: dict[str, str], streams: list[str]) -> None:
    """In the forked process: become ``python -m imagebot ARGS`` and exit with its code."""
    for fd, (path, mode) in enumerate(zip(streams, ("r", "w", "w"), strict=True)):
        with open(path, mode) as stream:
            os.dup2(stream.fileno(), fd)
    # The streams a new interpreter would make on those descriptors.
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, errors="backslashreplace", closefd=False)  # noqa: SIM115
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [str(ROOT / "imagebot" / "__main__.py"), *args]
    from imagebot.cli.main import main

    sys.exit(main())

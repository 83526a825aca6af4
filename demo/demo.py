"""The full loop, for real: a local registry, a bare git remote, and imagebot promoting a
version dev → staging → production, with a soak gate and a human rollback that becomes a
hold.

Run through ``demo/run.sh`` (which installs everything first). Every step prints what it
does; the registry and all files live in a temp directory removed at the end. Time is
imagebot's documented ``--now`` option, so the one-hour soak passes without waiting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import push_image, run_registry  # noqa: E402

IMAGE = "acme/podinfo"
ENVS = ("dev", "staging", "production")
START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday morning


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def sh(*args: str, cwd: Path | None = None, check: bool = True) -> int:
    print("$ " + " ".join(args), flush=True)
    return subprocess.run(args, cwd=cwd, check=check).returncode


def git(*args: str, cwd: Path, when: datetime | None = None) -> str:
    env = dict(os.environ)
    if when is not None:
        stamp = f"{int(when.timestamp())} +0000"
        env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env
    ).stdout


def imagebot(*args: str) -> int:
    # status prints a table: only warnings in the log keep it readable
    level = "warning" if args[0] == "status" else "info"
    return sh(
        str(ROOT / ".venv/bin/imagebot"), "--log-format", "console", "--log-level", level,
        *args, check=False,
    )  # fmt: skip


MANIFEST = """\
# podinfo in {env} — imagebot keeps the image current; every other byte is ours.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  template:
    spec:
      containers:
        - name: podinfo
          image: "{ref}"   # bumped by imagebot
          ports:
            - containerPort: 9898
"""


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="imagebot-demo-") as tmp:
        work = Path(tmp)
        step("Starting a real CNCF Distribution registry on a free loopback port")
        with run_registry(work / "registry") as registry:
            print(f"registry at {registry.url}")
            image = f"{registry.host}/{IMAGE}"
            step(f"Pushing {image}:1.0.0 and 1.1.0")
            digests = {}
            for tag in ("1.0.0", "1.1.0"):
                digests[tag] = push_image(registry, IMAGE, tag)
                print(f"pushed {image}:{tag} {digests[tag]}")

            step("Creating the environment repo: dev, staging and production all on 1.0.0")
            remote = work / "environments.git"
            git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=work)
            seed = work / "seed"
            git("clone", "--quiet", str(remote), str(seed), cwd=work)
            for name in ("user.name=Dana Ops", "user.email=dana@example.com"):
                key, _, value = name.partition("=")
                git("config", key, value, cwd=seed)
            pinned = f"{image}:1.0.0@{digests['1.0.0']}"
            for env in ENVS:
                path = seed / f"envs/{env}/podinfo.yaml"
                path.parent.mkdir(parents=True)
                path.write_text(MANIFEST.format(env=env, ref=pinned))
            git("add", ".", cwd=seed)
            git("commit", "--quiet", "-m", "podinfo everywhere", cwd=seed,
                when=START - timedelta(days=7))  # fmt: skip
            git("push", "--quiet", "origin", "HEAD:main", cwd=seed)

            policies = work / "policies"
            policies.mkdir()
            entry = f"  - name: podinfo\n    repository: {image}\n    digest: pin\n"
            files = {
                "dev": f'images:\n{entry}    range: "^1.0"\n',
                "staging": f"promote: {{from: dev, soak: 1h}}\nimages:\n{entry}",
                "production": f"promote: {{from: staging}}\nimages:\n{entry}",
            }
            for env, text in files.items():
                repo = f"repo: {{url: {remote}, branch: main, path: envs/{env}}}"
                body = f"environment: {env}\n{repo}\n{text}"
                (policies / f"{env}.yaml").write_text(body)
                print(f"# policies/{env}.yaml\n{body}")
            env_args = ["--policies", str(policies)]
            cache = ["--cache-dir", str(work / "cache")]

            def at(minutes: int) -> list[str]:
                return ["--now", (START + timedelta(minutes=minutes)).isoformat()]

            def running() -> dict[str, str]:
                git("fetch", "--quiet", "origin", cwd=seed)
                git("reset", "--quiet", "--hard", "origin/main", cwd=seed)
                out = {}
                for env in ENVS:
                    text = (seed / f"envs/{env}/podinfo.yaml").read_text()
                    out[env] = text.split(f"{image}:", 1)[1].split("@", 1)[0]
                return out

            failures: list[str] = []

            def expect(**tags: str) -> None:
                now = running()
                print("running: " + ", ".join(f"{e} {now[e]}" for e in ENVS))
                for env, tag in tags.items():
                    if now[env] != tag:
                        failures.append(f"expected {env} on {tag}, found {now[env]}")

            step("imagebot check")
            code = imagebot("check", *env_args)
            step("imagebot apply, Monday 10:00 — dev takes 1.1.0; staging waits for the soak")
            code |= imagebot("apply", *env_args, *cache, *at(0))
            expect(dev="1.1.0", staging="1.0.0", production="1.0.0")
            step("imagebot status, 20 minutes later — says what staging waits for, and how long")
            code |= imagebot("status", *env_args, *cache, *at(20))

            step("imagebot apply, 11:01 — dev ran 1.1.0 for an hour: staging, then production")
            code |= imagebot("apply", *env_args, *cache, *at(61))
            expect(dev="1.1.0", staging="1.1.0", production="1.1.0")
            print(git("log", "-1", "--format=%h %s%n%n%b", "main", "--", "envs/staging",
                      cwd=remote))  # fmt: skip

            step("A human rolls staging back to 1.0.0 (a commit imagebot did not write)")
            path = seed / "envs/staging/podinfo.yaml"
            path.write_text(MANIFEST.format(env="staging", ref=pinned))
            git("commit", "--quiet", "-am", "staging: back to 1.0.0, 1.1.0 breaks logins",
                cwd=seed, when=START + timedelta(minutes=70))  # fmt: skip
            git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
            step("imagebot apply, 13:00 — the rollback is a hold: staging stays on 1.0.0")
            code |= imagebot("apply", *env_args, *cache, *at(180))
            expect(dev="1.1.0", staging="1.0.0", production="1.1.0")
            code |= imagebot("status", *env_args, *cache, *at(180))

            step(f"Pushing {image}:1.2.0 (the fix); apply at 13:05 and again at 14:10")
            push_image(registry, IMAGE, "1.2.0")
            code |= imagebot("apply", *env_args, *cache, *at(185))
            expect(dev="1.2.0", staging="1.0.0")
            code |= imagebot("apply", *env_args, *cache, *at(250))
            expect(dev="1.2.0", staging="1.2.0", production="1.2.0")

            step("History of the environment repo")
            print(git("log", "--format=%h %ad %an: %s", "--date=format:%a %H:%M", "main",
                      cwd=remote))  # fmt: skip
            step("imagebot status at the end — and where the daemon would show it")
            print(
                f"imagebot serve {' '.join(env_args)} --listen 127.0.0.1:8080 would serve this"
                " as a page at http://127.0.0.1:8080/ and as JSON at"
                " http://127.0.0.1:8080/api/v1/status",
                flush=True,
            )
            code |= imagebot("status", *env_args, *cache, *at(250))
            for failure in failures:
                print(f"unexpected: {failure}", file=sys.stderr)
            return 1 if failures else code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())

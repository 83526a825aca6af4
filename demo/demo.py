"""The full loop, for real: a local registry, a bare git remote, and `imagebot apply`.

Run through ``demo/run.sh`` (which installs everything first). Every step prints what it
does; the registry and all files live in a temp directory removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry import push_image, run_registry  # noqa: E402

IMAGE = "acme/podinfo"


def step(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def sh(*args: str, cwd: Path | None = None, check: bool = True) -> int:
    print("$ " + " ".join(args), flush=True)
    return subprocess.run(args, cwd=cwd, check=check).returncode


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def imagebot(*args: str) -> int:
    return sh(str(ROOT / ".venv/bin/imagebot"), "--log-format", "console", *args, check=False)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="imagebot-demo-") as tmp:
        work = Path(tmp)
        step("Starting a real CNCF Distribution registry on a free loopback port")
        with run_registry(work / "registry") as registry:
            print(f"registry at {registry.url}")
            image = f"{registry.host}/{IMAGE}"
            step(f"Pushing {image}:1.0.0, 1.1.0, 2.0.0-rc.1 and 2.0.0")
            for tag in ("1.0.0", "1.1.0", "2.0.0-rc.1", "2.0.0"):
                print(f"pushed {image}:{tag} {push_image(registry, IMAGE, tag)}")

            step("Creating the environment repo (a bare remote) with a Deployment on 1.0.0")
            remote = work / "environments.git"
            git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=work)
            seed = work / "seed"
            git("clone", "--quiet", str(remote), str(seed), cwd=work)
            manifest = seed / "envs/dev/podinfo.yaml"
            manifest.parent.mkdir(parents=True)
            manifest.write_text(
                textwrap.dedent(
                    f"""\
                    # podinfo in dev — imagebot keeps the image current; every other byte is ours.
                    apiVersion: apps/v1
                    kind: Deployment
                    metadata:
                      name: podinfo
                    spec:
                      template:
                        spec:
                          containers:
                            - name: podinfo
                              image: "{image}:1.0.0"   # bumped by imagebot
                              ports:
                                - containerPort: 9898
                    """
                )
            )
            git("add", ".", cwd=seed)
            git("-c", "user.name=demo", "-c", "user.email=demo@example.com",
                "commit", "--quiet", "-m", "podinfo in dev", cwd=seed)  # fmt: skip
            git("push", "--quiet", "origin", "HEAD:main", cwd=seed)

            policies = work / "policies"
            policies.mkdir()
            (policies / "dev.yaml").write_text(
                textwrap.dedent(
                    f"""\
                    environment: dev
                    repo: {{url: {remote}, branch: main, path: envs/dev}}
                    images:
                      - name: podinfo
                        repository: {image}
                        range: "^1.0"
                    """
                )
            )
            print((policies / "dev.yaml").read_text())
            env = ["--policies", str(policies)]
            cache = ["--cache-dir", str(work / "cache")]

            step("imagebot check")
            imagebot("check", *env)
            step("imagebot plan — what would change")
            imagebot("plan", *env, *cache)
            step("imagebot apply — one cycle: scan, plan, edit, commit, push")
            code = imagebot("apply", *env, *cache)
            step("The commit on the remote")
            print(git("log", "-1", "--format=fuller", "-p", "main", cwd=remote))

            step(f"Pushing {image}:1.2.0 and running again")
            push_image(registry, IMAGE, "1.2.0")
            code |= imagebot("apply", *env, *cache)
            print(git("log", "-1", "-p", "--format=%h %s%n%n%b", "main", cwd=remote))

            step("Nothing new: a third run changes nothing")
            before = git("rev-parse", "main", cwd=remote)
            code |= imagebot("apply", *env, *cache)
            after = git("rev-parse", "main", cwd=remote)
            print(f"remote main before {before.strip()} after {after.strip()}")
            step("History of the environment repo")
            print(git("log", "--oneline", "main", cwd=remote))
            if before != after:
                print("unexpected: the third run made a commit", file=sys.stderr)
                return 1
            return code


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())

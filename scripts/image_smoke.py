"""Runs imagebot's container image as users will, against a real registry and a real git
remote on the host network: `imagebot --version`, then `imagebot serve` with a read-only
root filesystem as user 10001 — /healthz and /readyz answer, one push to the registry (its
notification reaching the daemon's webhook) becomes one commit on the remote, and SIGTERM
ends the container with exit code 0.

    .venv/bin/python scripts/image_smoke.py --image localhost/imagebot:dev

Called by scripts/image.sh after the build; it exits non-zero on the first thing that does
not hold and says which.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.daemon import wait_for  # noqa: E402
from tests.support.gitenv import DEPLOYMENT, commits, make_remote, show  # noqa: E402
from tests.support.registry import Notify, free_port, push_image, run_registry  # noqa: E402

SECRET = "smoke-webhook-secret-not-logged"


def say(text: str) -> None:
    print(f"smoke: {text}", flush=True)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


@contextmanager
def git_daemon(base: Path) -> Iterator[int]:
    """`git daemon` serving the bare remotes under ``base`` on 127.0.0.1, pushes allowed."""
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack",
         f"--base-path={base}", "--listen=127.0.0.1", f"--port={port}", str(base)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                subprocess.run(
                    ["git", "ls-remote", f"git://127.0.0.1:{port}/remote.git"],
                    capture_output=True,
                    check=False,
                ).returncode
                == 0
            ),
            timeout=20,
            what="git daemon",
        )
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    args = parser.parse_args()

    version = podman("run", "--rm", "--read-only", "--user", "10001", args.image, "--version")
    say(f"imagebot --version in the image: {version.stdout.strip()}")
    # The image keeps botocore's models of the AWS services imagebot calls, and no others.
    podman(
        "run", "--rm", "--read-only", "--user", "10001", "--entrypoint", "python3", args.image,
        "-c", "import botocore.session as s; session = s.get_session(); "
        "[session.create_client(n, region_name='us-east-1') for n in "
        "('ecr', 'ecr-public', 'sts', 'sso', 'sso-oidc')]",
    )  # fmt: skip
    say("botocore: the ECR, STS and SSO clients load")
    # The image's git has no perl and few helpers: its https transport still loads (it only
    # fails to connect), and ssh-keygen signs as git's SSH commit signing asks it to.
    run = ("run", "--rm", "--read-only", "--user", "10001", "--network", "none")
    https = podman(
        *run, "--entrypoint", "git", args.image, "ls-remote", "https://127.0.0.1:9/x.git",
        check=False,
    )  # fmt: skip
    if "unable to access 'https://127.0.0.1:9/x.git/'" not in https.stderr:
        raise SystemExit(f"smoke: git's https transport does not run:\n{https.stderr}")
    signed = podman(
        *run, "--entrypoint", "sh", args.image, "-c",
        "ssh-keygen -q -t ed25519 -N '' -f /tmp/key"
        " && echo x | ssh-keygen -Y sign -f /tmp/key -n git",
    )  # fmt: skip
    if "BEGIN SSH SIGNATURE" not in signed.stdout:
        raise SystemExit(f"smoke: ssh-keygen does not sign:\n{signed.stdout}{signed.stderr}")
    # GitPython finds the helpers of a git command that timed out with pgrep, to kill them.
    found = podman(*run, "--entrypoint", "sh", args.image, "-c", "pgrep -x sh", check=False)
    if not found.stdout.strip().isdigit():
        raise SystemExit(f"smoke: pgrep does not run:\n{found.stdout}{found.stderr}")
    say("git: the https transport loads; ssh-keygen signs; pgrep finds processes")

    with tempfile.TemporaryDirectory(prefix="imagebot-smoke-") as tmp:
        work = Path(tmp)
        port = free_port()
        notify = Notify(
            f"http://127.0.0.1:{port}/webhooks/distribution",
            {"Authorization": f"Bearer {SECRET}"},
            extra={"timeout": "2s", "threshold": 5, "backoff": "1s"},
        )
        storage, registry_port = work / "blobs", free_port()
        # 1.0.0 exists before the registry notifies anyone: only the later push is news.
        with run_registry(work / "r0", storage=storage, port=registry_port) as first:
            push_image(first, "acme/app", "1.0.0")
        with (
            run_registry(
                work / "r1", storage=storage, port=registry_port, notifications=[notify]
            ) as registry,
        ):
            image = f"{registry.host}/acme/app"
            remote = make_remote(
                work / "git", {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
            )
            # The daemon runs as user 10001 and pushes through git daemon, which writes as us.
            policies = work / "policies"
            policies.mkdir()
            os.chmod(work, 0o755)
            with git_daemon(remote.parent) as git_port:
                (policies / "dev.yaml").write_text(
                    textwrap.dedent(
                        f"""\
                        environment: dev
                        repo: {{url: "git://127.0.0.1:{git_port}/remote.git", path: envs/dev}}
                        schedule: {{every: 24h}}
                        images:
                          - name: app
                            repository: {image}
                        """
                    )
                )
                for path in (policies, *policies.iterdir()):
                    os.chmod(path, 0o755 if path.is_dir() else 0o644)
                name = f"imagebot-smoke-{os.getpid()}"
                podman(
                    "run", "-d", "--name", name, "--network", "host", "--read-only",
                    "--user", "10001", "-e", f"IMAGEBOT_WEBHOOK_SECRET={SECRET}",
                    "-v", f"{policies}:/etc/imagebot/policies:ro",
                    args.image,
                    "serve", "--policies", "/etc/imagebot/policies",
                    "--listen", f"127.0.0.1:{port}", "--webhook-debounce", "0.2",
                )  # fmt: skip
                try:
                    base = f"http://127.0.0.1:{port}"
                    wait_for(lambda: ok(f"{base}/healthz"), timeout=60, what="/healthz")
                    wait_for(lambda: ok(f"{base}/readyz"), timeout=60, what="/readyz")
                    say("serve: /healthz and /readyz answer 200")
                    before = len(commits(remote))
                    push_image(registry, "acme/app", "1.1.0")
                    wait_for(
                        lambda: len(commits(remote)) == before + 1,
                        timeout=90,
                        what="the commit for acme/app 1.1.0",
                    )
                    moved = show(remote, "envs/dev/app.yaml").decode()
                    if f"{image}:1.1.0" not in moved:
                        raise SystemExit(f"smoke: the commit does not hold 1.1.0:\n{moved}")
                    say("a push of 1.1.0 became one commit on the remote")
                    podman("stop", "--time", "30", name)
                    code = podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout
                    if code.strip() != "0":
                        logs = podman("logs", name, check=False)
                        raise SystemExit(f"smoke: exit code {code.strip()} after SIGTERM\n"
                                         f"{logs.stdout}{logs.stderr}")  # fmt: skip
                    say("SIGTERM: exit code 0")
                except BaseException:
                    logs = podman("logs", name, check=False)
                    sys.stderr.write(logs.stdout + logs.stderr)
                    raise
                finally:
                    podman("rm", "-f", name, check=False)
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

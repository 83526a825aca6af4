"""``imagebot promote / hold / release / rollback``: manual operations as git commits.

Each is one commit on the environment's branch, written by the person who runs it and
carrying trailers (``Imagebot-Manual: <operation> <image>``, ``Imagebot-Reason``) that the
next cycle reads back from history like everything else: no database, reviewed like any
change. ``promote`` moves an image now to a version its upstream ran, past soak and windows
but never past a hold or a failing check; ``hold`` keeps an image at the version it runs
(``Imagebot-Hold``) until ``release`` lifts it (``Imagebot-Lift-Hold``); ``rollback`` puts
back the version that ran before, which holds the version it left.

Where the environment publishes by pull request, the commit goes on the environment's pull
request branch, on top of the manual operations already waiting there, and the pull request
says what it carries: it takes effect once merged, and the cycle leaves the pull request as
it is until then (``imagebot.publisher.pull_request``).

Holds and releases each add a line to ``.imagebot/holds.txt`` under the environment's path,
a human-readable log: git lists a commit in a path's history only when it changes a file
there, and the trailers, not the file, are what the next cycle reads.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from collections import defaultdict
from collections.abc import Callable

import anyio

from imagebot import config
from imagebot.cli import cycle, options
from imagebot.clock import utc_now
from imagebot.core.plan import (
    TRAILER_DIGEST,
    TRAILER_ENVIRONMENT,
    TRAILER_FROM,
    TRAILER_IMAGE,
    TRAILER_PROMOTED_FROM,
    TRAILER_TO,
)
from imagebot.core.policy import ImagePolicy, LoadedPolicy
from imagebot.core.promotion.history import runs_of
from imagebot.core.promotion.holds import (
    TRAILER_HOLD,
    TRAILER_LIFT_HOLD,
    TRAILER_MANUAL,
    TRAILER_REASON,
)
from imagebot.core.rewrite import Edit, apply
from imagebot.errors import ImagebotError
from imagebot.git.history import read_history
from imagebot.git.push import push
from imagebot.git.repo import EnvRepo
from imagebot.git.workspace import Workspace, read_workspace
from imagebot.publisher import Publishers, PullRequestPublisher
from imagebot.registry.tags import newness

#: Gates a manual promotion may pass: time-based ones, never holds, checks or verification.
PASSABLE = frozenset({"soak", "window", "freeze", "approval"})
HOLDS_FILE = ".imagebot/holds.txt"


def add_arguments(parser: argparse.ArgumentParser, *, version: bool = False) -> None:
    parser.add_argument("environment_name", metavar="ENV")
    parser.add_argument("image", metavar="IMAGE", help="the image's name in the policy")
    if version:
        parser.add_argument("version", nargs="?", metavar="VERSION")
    parser.add_argument("--reason", default="", help="why, recorded in the commit")
    parser.add_argument(
        "--author",
        default=None,
        metavar="'NAME <EMAIL>'",
        help="who (default: git config user.name and user.email)",
    )
    options.add_cycle_arguments(parser, explain=False)


def _author(given: str | None) -> tuple[str, str]:
    if given:
        name, _, email = given.partition("<")
        if not email.endswith(">") or not name.strip():
            raise ImagebotError(f"--author {given!r}: expected 'NAME <EMAIL>'")
        return name.strip(), email[:-1]

    def config_value(key: str) -> str:
        done = subprocess.run(["git", "config", key], capture_output=True, text=True)
        return done.stdout.strip()

    name = config_value("user.name") or os.environ.get("USER", "")
    email = config_value("user.email")
    if not name or not email:
        raise ImagebotError("who is this? set git config user.name and user.email, or --author")
    return name, email


def _policy(args: argparse.Namespace) -> tuple[LoadedPolicy, ImagePolicy]:
    policies = config.load_policies(args.policies)
    env, name = args.environment_name, args.image
    loaded = next((p for p in policies.environments if p.name == env), None)
    if loaded is None:
        known = ", ".join(p.name for p in policies.environments)
        raise ImagebotError(f"{args.policies}: no environment {env!r} (known: {known})")
    image = loaded.policy.image(name)
    if image is None or image.pattern is not None:
        known = ", ".join(i.name for i in loaded.policy.images if i.pattern is None)
        raise ImagebotError(f"{loaded.source}: no image {name!r} (known: {known})")
    return loaded, image


def _edits(ws: Workspace, image: str, tag: str, digest: str | None) -> dict[str, bytes]:
    group = next((g for g in ws.governance.groups if g.image == image), None)
    if group is None:
        raise ImagebotError(f"no file under {ws.repo.url} refers to image {image!r}")
    by_file = defaultdict(list)
    for path, target in group.targets:
        if target.digest is not None and digest is None:
            raise ImagebotError(f"{path}:{target.line}: pins a digest, and {tag}'s is unknown")
        by_file[path].append(Edit(target, tag, digest if target.digest else None))
    return {
        path: apply(ws.files[path], edits, source=path).encode() for path, edits in by_file.items()
    }


def _promotion(args: argparse.Namespace, loaded: LoadedPolicy) -> tuple[str, str | None]:
    """The version to promote and its digest, from the decision record of a status cycle."""
    if loaded.policy.promote is None:
        raise ImagebotError(f"{loaded.source}: {loaded.name} promotes from no environment")
    args.environment = [loaded.name]
    result = cycle.cycle(args, publish=False, verdicts=True)
    record = next((r for e in result.environments for r in e.images if r.image == args.image), None)
    if record is None:
        problems = [*result.problems, *(p for e in result.environments for p in e.plan.problems)]
        raise ImagebotError(f"{loaded.name}: no decision for {args.image}: {'; '.join(problems)}")
    passable = [c for c in record.candidates if c.accepted or c.gate in PASSABLE]
    if args.version:
        found = next((c for c in record.candidates if c.tag == args.version), None)
        if found is None:
            raise ImagebotError(
                f"{loaded.name}: {args.version} is not a version {loaded.policy.promote.from_}"
                f" ran for {args.image}"
            )
        if found not in passable:
            raise ImagebotError(f"{loaded.name}: {args.image} {found.tag}: {found.reason}")
    elif not passable:
        raise ImagebotError(f"{loaded.name}: nothing to promote for {args.image}")
    else:
        found = max(passable, key=lambda c: newness(c.tag))
    if found.tag == record.running.tag:
        raise ImagebotError(f"{loaded.name}: {args.image} already runs {found.tag}")
    return found.tag, found.digest


def run(op: str, args: argparse.Namespace) -> int:
    loaded, image = _policy(args)
    author = _author(args.author)
    env, name, reason = loaded.name, image.name, " ".join(args.reason.split())
    target = _promotion(args, loaded) if op == "promote" else None
    repos_dir = (args.cache_dir or options.default_cache_dir()) / "repos"
    ws = read_workspace(loaded, repos_dir, args.git_timeout)
    runs = runs_of(image, read_history(loaded, ws.repo))
    running = runs[-1] if runs else None
    trailers = [f"{TRAILER_MANUAL}: {op} {name}"] + (
        [f"{TRAILER_REASON}: {reason}"] if reason else []
    )
    why = f": {reason}" if reason else ""
    edit: tuple[str, str | None] | None = None  # promote, rollback: the version to write
    line = ""  # hold, release: the line for the holds log
    if op in ("promote", "rollback"):
        if op == "promote":
            assert target is not None
            tag, digest = target
            upstream = loaded.policy.promote.from_ if loaded.policy.promote else ""
            trailers += [
                f"{TRAILER_ENVIRONMENT}: {env}",
                f"{TRAILER_IMAGE}: {image.normalized_repository}",
                f"{TRAILER_FROM}: {running.tag if running else ''}",
                f"{TRAILER_TO}: {tag}",
                *([f"{TRAILER_DIGEST}: {digest}"] if digest else []),
                f"{TRAILER_PROMOTED_FROM}: {upstream}",
            ]
        else:
            earlier = [r for r in runs if running is not None and r.tag != running.tag]
            if running is None or not earlier:
                raise ImagebotError(f"{env}: {name} has no earlier version to roll back to")
            tag, digest = earlier[-1].tag or "", earlier[-1].digest
        edit, what = (tag, digest), f"{running.tag if running else '(none)'} -> {tag}"
    elif op == "hold":
        if running is None or running.tag is None:
            raise ImagebotError(f"{env}: {name} runs no tagged version to hold")
        trailers.append(f"{TRAILER_HOLD}: {name} {running.tag}")
        line, what = f"hold {name} at {running.tag} by {author[0]}{why}", f"at {running.tag}"
    else:
        trailers.append(f"{TRAILER_LIFT_HOLD}: {name}")
        line, what = f"release {name} by {author[0]}{why}", "holds lifted"
    title = f"imagebot({env}): {op} {name} {what}"
    message = "\n\n".join([title, *([reason] if reason else []), "\n".join(trailers)]) + "\n"

    def make(parent: str) -> str:
        """The commit on top of ``parent``, its files read there."""
        here = (
            ws
            if parent == ws.repo.fetched
            else read_workspace(loaded, repos_dir, args.git_timeout, at=parent)
        )
        changes = _edits(here, name, *edit) if edit else _logged(loaded, here.repo, line)
        return here.repo.commit(
            changes, message=message, author_name=author[0], author_email=author[1],
            when=utc_now(), parent_sha=parent,
        )  # fmt: skip

    if loaded.policy.publish.mode == "pull-request":
        done = anyio.run(_propose, loaded, ws.repo, make)
        print(f"{env}: {op} {name} {what}: {done}; it takes effect once merged")
        return 0
    repo = ws.repo
    sha = make(repo.fetched or repo.head())
    refused = push(repo, sha)
    if refused is not None:
        raise ImagebotError(f"{env}: {refused.message}; nothing changed, run it again")
    print(f"{env}: {op} {name} {what}: pushed {sha}")
    return 0


def _logged(loaded: LoadedPolicy, repo: EnvRepo, line: str) -> dict[str, bytes]:
    """The holds log with ``line`` added: the one file a hold or release changes."""
    path = f"{loaded.policy.repo.path.strip('/')}/{HOLDS_FILE}".lstrip("/")
    folder = path.rpartition("/")[0]
    entry = next((e for e in repo.files(folder, suffixes=(".txt",)) if e.path == path), None)
    text = repo.read(entry).decode() if entry is not None else ""
    return {path: f"{text}{utc_now():%Y-%m-%d %H:%M} {line}\n".encode()}


async def _propose(loaded: LoadedPolicy, repo: EnvRepo, make: Callable[[str], str]) -> str:
    """Reviewed like every change of the environment: through its pull request."""
    async with Publishers() as publishers:
        forge = publishers.forge_for(loaded)
        assert forge is not None  # pull-request mode names its forge
        pr = PullRequestPublisher(
            loaded, forge, None, infos={}, pending=publishers.pending, branches=publishers.branches
        )
        return await pr.carry(repo, make)

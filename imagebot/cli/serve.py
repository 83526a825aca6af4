"""``imagebot serve``: run cycles on schedules and registry webhooks until stopped."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import sys
from pathlib import Path

import anyio

from imagebot.cli import cycle
from imagebot.cli.options import (
    add_cache_dir_argument,
    add_git_timeout_argument,
    add_policies_argument,
    add_registry_arguments,
    default_cache_dir,
)
from imagebot.errors import ImagebotError

NAME = "serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # A default from the environment is text: argparse applies type= to it.
    add_policies_argument(parser, "policy files, reloaded when they change")
    parser.add_argument(
        "--listen",
        default=os.environ.get("IMAGEBOT_LISTEN", "127.0.0.1:8080"),
        metavar="HOST:PORT",
        help="address of the HTTP endpoints and webhooks (default: $IMAGEBOT_LISTEN or"
        " 127.0.0.1:8080)",
    )
    add_cache_dir_argument(parser)
    add_registry_arguments(parser)
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        default=os.environ.get("IMAGEBOT_LEADER_ELECT", "").lower() in ("1", "true", "yes"),
        help="run cycles only while holding a Kubernetes Lease (for replicas > 1;"
        " default: $IMAGEBOT_LEADER_ELECT)",
    )
    parser.add_argument(
        "--lease-name",
        default=os.environ.get("IMAGEBOT_LEASE_NAME", "imagebot"),
        help="name of the Lease in the pod's namespace, and the prefix of the shard Leases"
        " (default: imagebot)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=int(os.environ.get("IMAGEBOT_SHARDS", "0")),
        metavar="N",
        help="split the environments into N shards, each owned through its own Lease, so"
        " replicas share the work (default: $IMAGEBOT_SHARDS or 0, one leader runs all)",
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=os.environ.get("IMAGEBOT_LEASE_DURATION") or "15",
        metavar="SECONDS",
        help="how long a Lease holds without renewal: a dead replica's work moves after it"
        " (default: 15; renewals every 2/15 of it, giving up after 2/3 of it)",
    )
    parser.add_argument(
        "--webhook-secret-file",
        type=Path,
        default=os.environ.get("IMAGEBOT_WEBHOOK_SECRET_FILE") or None,
        metavar="FILE",
        help="file holding the webhook secret (or set $IMAGEBOT_WEBHOOK_SECRET);"
        " without a secret, webhooks are off",
    )
    parser.add_argument(
        "--webhook-url-token-file",
        type=Path,
        default=os.environ.get("IMAGEBOT_WEBHOOK_URL_TOKEN_FILE") or None,
        metavar="FILE",
        help="file holding the ?token= of Docker Hub and Quay webhooks, which cannot send"
        " headers (or set $IMAGEBOT_WEBHOOK_URL_TOKEN); without it, those two are off",
    )
    parser.add_argument(
        "--http-deadline",
        type=float,
        default=os.environ.get("IMAGEBOT_HTTP_DEADLINE") or "10",
        metavar="SECONDS",
        help="longest a client may take to send a request's headers, and a webhook's body"
        " (default: 10)",
    )
    parser.add_argument(
        "--status-page",
        choices=["on", "off"],
        default=os.environ.get("IMAGEBOT_STATUS_PAGE", "on"),
        help="serve the status page / and /api/v1/status (default: $IMAGEBOT_STATUS_PAGE or on)",
    )
    for kind, holds in (("token", "a bearer token"), ("basic-auth", "USER:PASSWORD")):
        variable = f"IMAGEBOT_STATUS_{kind.upper().replace('-', '_')}_FILE"
        parser.add_argument(
            f"--status-{kind}-file",
            type=Path,
            default=os.environ.get(variable) or None,
            metavar="FILE",
            help=f"file holding {holds} the status page and API demand (default: ${variable})",
        )
    add_git_timeout_argument(parser)
    parser.add_argument(
        "--grace",
        type=float,
        default=os.environ.get("IMAGEBOT_SHUTDOWN_GRACE") or "25",
        metavar="SECONDS",
        help="longest shutdown after SIGTERM (default: 25; keep it under the pod's"
        " terminationGracePeriodSeconds)",
    )
    parser.add_argument(
        "--max-cycles",
        type=int,
        default=int(os.environ.get("IMAGEBOT_MAX_CYCLES", "4")),
        metavar="N",
        help="cycles running at once (default: 4)",
    )
    parser.add_argument(
        "--reload-interval",
        type=float,
        default=os.environ.get("IMAGEBOT_RELOAD_INTERVAL") or "5",
        metavar="SECONDS",
        help="how often the policy directory is checked for changes (default: 5)",
    )
    parser.add_argument(
        "--webhook-debounce",
        type=float,
        default=os.environ.get("IMAGEBOT_WEBHOOK_DEBOUNCE") or "0.2",
        metavar="SECONDS",
        help="wait this long after a webhook for more pushes before the cycle (default: 0.2)",
    )


def read_secret(variable: str, path: Path | None, flag: str) -> str | None:
    """$``variable``, else the file's content (surrounding whitespace dropped); remembered
    so that no message shows it."""
    from imagebot.livefile import secret_file
    from imagebot.redact import SecretError, remember, secret

    value = os.environ.get(variable)
    try:
        if value:
            return remember(secret(value, what=f"${variable}"))
        return None if path is None else remember(secret_file(path, what=flag))
    except SecretError as exc:
        raise ImagebotError(str(exc)) from None
    except OSError as exc:
        raise ImagebotError(f"{flag} {path}: cannot read: {exc.strerror}") from None


def _return_freed_memory() -> None:
    """glibc raises its mmap threshold after a large buffer is freed, so later webhook bodies
    come from the heap and their memory stays with the process once the clients are gone; a
    fixed threshold (64 KiB) gives it back (bench/hostile_inputs.py)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl, macOS): no tuning
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # -3: M_MMAP_THRESHOLD


def run(args: argparse.Namespace) -> int:
    # Imported here: `imagebot --help` and the other commands do not pay for the HTTP stack.
    from imagebot.daemon.leader import SERVICE_ACCOUNT, LeaseSettings
    from imagebot.daemon.listener import parse_listen
    from imagebot.daemon.service import ServeOptions, Service
    from imagebot.daemon.status_api import Access
    from imagebot.policysource import GitPolicies

    try:
        parse_listen(args.listen)
    except ValueError as exc:
        print(f"imagebot serve: {exc}", file=sys.stderr)
        return 2
    if args.shards < 0 or args.lease_duration < 1:
        print("imagebot serve: --shards must be >= 0 and --lease-duration >= 1", file=sys.stderr)
        return 2
    _return_freed_memory()
    lease = None
    if args.leader_elect or args.shards:
        mount = Path(os.environ.get("IMAGEBOT_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT)
        lease = dataclasses.replace(
            LeaseSettings.in_cluster(os.environ, name=args.lease_name, mount=mount),
            lease_duration=args.lease_duration,
            renew_deadline=args.lease_duration * 2 / 3,
            retry_period=args.lease_duration * 2 / 15,
        )
    cache_dir = args.cache_dir or default_cache_dir()
    policies: Path | GitPolicies = args.policies
    # Policies from git are fetched when serve starts; registries.yaml beside them is read then.
    beside = policies if isinstance(policies, Path) else policies.directory(cache_dir)
    if isinstance(policies, Path):
        cycle.registry_settings(args, beside)  # a broken file stops serve before it starts
    secrets = [
        ("IMAGEBOT_WEBHOOK_SECRET", args.webhook_secret_file, "--webhook-secret-file"),
        ("IMAGEBOT_WEBHOOK_URL_TOKEN", args.webhook_url_token_file, "--webhook-url-token-file"),
    ]
    for secret in secrets:
        read_secret(*secret)  # so does a secret that cannot be read
    # Each is asked again where it is used (a changed file is read again: see livefile).
    options = ServeOptions(
        policies=policies,
        cache_dir=cache_dir,
        settings=lambda: cycle.registry_settings(args, beside),
        listen=args.listen,
        webhook_secret=lambda: read_secret(*secrets[0]),
        url_token=lambda: read_secret(*secrets[1]),
        http_deadline=args.http_deadline,
        lease=lease,
        shards=args.shards,
        grace=args.grace,
        max_cycles=args.max_cycles,
        reload_interval=args.reload_interval,
        debounce=args.webhook_debounce,
        git_timeout=args.git_timeout,
        status_page=args.status_page == "on",
        status_access=Access.from_files(args.status_token_file, args.status_basic_auth_file),
    )
    service = Service(options)
    return anyio.run(service.run)

"""``imagebot serve``: run cycles on schedules and registry webhooks until stopped."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import anyio

from imagebot.cli import cycle
from imagebot.cli.options import (
    add_cache_dir_argument,
    add_git_timeout_argument,
    add_registry_arguments,
    default_cache_dir,
)
from imagebot.errors import ImagebotError

NAME = "serve"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        type=Path,
        default=Path(os.environ.get("IMAGEBOT_POLICIES", "policies")),
        metavar="DIR",
        help="directory of policy files, reloaded when it changes (default: $IMAGEBOT_POLICIES"
        " or ./policies)",
    )
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
        help="name of the Lease in the pod's namespace (default: imagebot)",
    )
    parser.add_argument(
        "--webhook-secret-file",
        type=Path,
        default=(
            Path(os.environ["IMAGEBOT_WEBHOOK_SECRET_FILE"])
            if os.environ.get("IMAGEBOT_WEBHOOK_SECRET_FILE")
            else None
        ),
        metavar="FILE",
        help="file holding the webhook secret (or set $IMAGEBOT_WEBHOOK_SECRET);"
        " without a secret, webhooks are off",
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
            default=Path(os.environ[variable]) if os.environ.get(variable) else None,
            metavar="FILE",
            help=f"file holding {holds} the status page and API demand (default: ${variable})",
        )
    add_git_timeout_argument(parser)
    parser.add_argument(
        "--grace",
        type=float,
        default=_env_float("IMAGEBOT_SHUTDOWN_GRACE", 25.0),
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
        default=_env_float("IMAGEBOT_RELOAD_INTERVAL", 5.0),
        metavar="SECONDS",
        help="how often the policy directory is checked for changes (default: 5)",
    )
    parser.add_argument(
        "--webhook-debounce",
        type=float,
        default=_env_float("IMAGEBOT_WEBHOOK_DEBOUNCE", 0.2),
        metavar="SECONDS",
        help="wait this long after a webhook for more pushes before the cycle (default: 0.2)",
    )


def webhook_secret(args: argparse.Namespace) -> str | None:
    """$IMAGEBOT_WEBHOOK_SECRET, else the secret file's content (trailing newline dropped)."""
    secret = os.environ.get("IMAGEBOT_WEBHOOK_SECRET")
    if secret:
        return secret
    path: Path | None = args.webhook_secret_file
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImagebotError(f"--webhook-secret-file {path}: cannot read: {exc}") from None
    if not text:
        raise ImagebotError(f"--webhook-secret-file {path}: empty")
    return text


def run(args: argparse.Namespace) -> int:
    # Imported here: `imagebot --help` and the other commands do not pay for the HTTP stack.
    from imagebot.daemon.leader import SERVICE_ACCOUNT, LeaseSettings
    from imagebot.daemon.service import ServeOptions, Service, parse_listen
    from imagebot.daemon.status_api import Access

    try:
        parse_listen(args.listen)
    except ValueError as exc:
        print(f"imagebot serve: {exc}", file=sys.stderr)
        return 2
    lease = None
    if args.leader_elect:
        mount = Path(os.environ.get("IMAGEBOT_SERVICE_ACCOUNT_DIR") or SERVICE_ACCOUNT)
        lease = LeaseSettings.in_cluster(os.environ, name=args.lease_name, mount=mount)
    options = ServeOptions(
        policies=args.policies,
        cache_dir=args.cache_dir or default_cache_dir(),
        settings=cycle.registry_settings(args),
        listen=args.listen,
        webhook_secret=webhook_secret(args),
        lease=lease,
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

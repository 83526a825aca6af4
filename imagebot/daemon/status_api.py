"""``GET /api/v1/status`` and ``GET /``: the daemon's last decision records as JSON and as a
page.

Both are built from one context (:func:`status_context`), as datasette builds a page and its
JSON twin, so the page and the API cannot disagree. Nothing here calls a registry, git or a
forge: it reads what each environment's last cycle recorded, and only the time left on a
gate moves with the clock. Every string goes through one redaction before it is served.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from imagebot.core.durations import format_duration
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.record import ImageRecord
from imagebot.errors import ImagebotError
from imagebot.git.repo import redact

if TYPE_CHECKING:
    from imagebot.daemon.service import Service

API_VERSION = "v1"
#: States an image can be in, most urgent first (the page's groups, the ``state`` filter).
STATES = ("error", "held", "waiting", "moving", "up-to-date")
_WEB_COMMIT = {"github": "{}/commit/{}", "gitea": "{}/commit/{}", "gitlab": "{}/-/commit/{}"}


@dataclass(frozen=True)
class Access:
    """Who may read the page and the API: a bearer token, or basic-auth credentials."""

    token: str | None = None
    basic: tuple[str, str] | None = None

    @classmethod
    def from_files(cls, token_file: Path | None, basic_file: Path | None) -> Access | None:
        if token_file and basic_file:
            raise ImagebotError("give --status-token-file or --status-basic-auth-file, not both")
        if token_file:
            return cls(token=_secret(token_file, "--status-token-file"))
        if basic_file:
            user, sep, password = _secret(basic_file, "--status-basic-auth-file").partition(":")
            if not sep or not user or not password:
                raise ImagebotError(
                    f"--status-basic-auth-file {basic_file}: expected USER:PASSWORD"
                )
            return cls(basic=(user, password))
        return None

    def allows(self, authorization: str) -> bool:
        if self.token is not None:
            expected = f"Bearer {self.token}"
        else:
            assert self.basic is not None
            expected = "Basic " + base64.b64encode(":".join(self.basic).encode()).decode()
        return hmac.compare_digest(authorization.encode(), expected.encode())


def _secret(path: Path, option: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImagebotError(f"{option} {path}: cannot read: {exc}") from None
    if not text:
        raise ImagebotError(f"{option} {path}: empty")
    return text


def pipeline_order(environments: Mapping[str, LoadedPolicy]) -> list[str]:
    """Environment names with each upstream before the environments promoted from it."""
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            promote = environments[name].policy.promote
            up = promote.from_ if promote else None
            ok = up in environments and up not in seen
            depth[name] = level(up, seen | {name}) + 1 if ok and up else 0
        return depth[name]

    return sorted(environments, key=lambda n: (level(n), n))


def commit_url(loaded: LoadedPolicy, sha: str | None) -> str | None:
    """The commit's web page, when the policy names the forge and the repo URL is https."""
    forge = loaded.policy.publish.forge
    url = loaded.policy.repo.url
    if sha is None or forge is None or not url.startswith("https://") or "@" in url:
        return None
    return _WEB_COMMIT[forge.type].format(url.removesuffix(".git").rstrip("/"), sha)


def _state(r: ImageRecord) -> str:
    if r.errors:
        return "error"
    if r.holds:
        return "held"
    if r.waiting is not None:
        return "waiting"
    return "moving" if r.choice else "up-to-date"


def _left(r: ImageRecord, decided: datetime, now: datetime) -> float | None:
    """Seconds the blocking gate has left, counted from the decision to now."""
    data = dict(r.waiting.data or {}) if r.waiting else {}
    if isinstance(data.get("left_seconds"), int | float):
        left = float(data["left_seconds"]) - (now - decided).total_seconds()  # type: ignore[arg-type]
        return max(left, 0.0)
    until = data.get("until")
    if isinstance(until, str):
        return max((datetime.fromisoformat(until) - now).total_seconds(), 0.0)
    return None


def image_json(
    r: ImageRecord, loaded: LoadedPolicy, decided: datetime, now: datetime
) -> dict[str, Any]:
    """The record's JSON with what a reader needs beside it: state, time left, links, and
    the command for each manual action."""
    doc = r.to_json()
    env, image = r.environment, r.image
    doc["environment"] = env
    doc["state"] = _state(r)
    doc["since"]["url"] = commit_url(loaded, r.running.commit)
    left = _left(r, decided, now)
    doc["waiting"] = (
        None
        if r.waiting is None
        else {
            "gate": r.waiting.gate,
            "reason": r.waiting.message,
            "left_seconds": None if left is None else round(left),
            "left": None if left is None else format_duration(timedelta(seconds=round(left))),
        }
    )
    for hold in doc["holds"]:
        hold["lift"] = f"imagebot release {env} {image}"
    doc["commands"] = {
        op: f"imagebot {op} {env} {image}" for op in ("promote", "hold", "release", "rollback")
    }
    return doc


def _matches(doc: dict[str, Any], q: str, state: str) -> bool:
    if state and doc["state"] != state:
        return False
    if not q:
        return True
    words = (doc["image"], doc["repository"], doc["running"]["tag"] or "", doc["candidate"] or "")
    return any(q in w.lower() for w in words)


def status_context(
    service: Service, now: datetime, *, q: str = "", environment: str = "", state: str = ""
) -> dict[str, Any]:
    """Everything ``/api/v1/status`` answers and ``/`` shows, filtered as asked."""
    loaded = service.policies.state.environments
    q = q.strip().lower()
    environments = []
    for name in pipeline_order(loaded):
        if environment and name != environment:
            continue
        policy = loaded[name]
        last = service.last.get(name)
        due = service.next_due.get(name)
        promote = policy.policy.promote
        images = [
            doc
            for r in (last.images if last else ())
            if _matches(doc := image_json(r, policy, last.at, now), q, state)  # type: ignore[union-attr]
        ]
        environments.append(
            {
                "name": name,
                "upstream": promote.from_ if promote else None,
                "publish": policy.policy.publish.mode,
                "last_cycle": None
                if last is None
                else {
                    "start": (last.at - timedelta(seconds=last.seconds)).isoformat(
                        timespec="seconds"
                    ),
                    "duration_seconds": round(last.seconds, 3),
                    "result": "ok" if last.ok else "failed",
                    "problems": [last.error] if last.error else [],
                },
                "next_cycle": due.isoformat(timespec="seconds") if due else None,
                "images": images,
            }
        )
    doc = {
        "api_version": API_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "filters": {"q": q, "environment": environment, "state": state},
        "environments": environments,
        "events": list(service.events)[::-1],  # one C-level copy: safe beside the loop
    }
    clean: dict[str, Any] = _redacted(doc)
    return clean


def _redacted(value: Any) -> Any:
    """Every string with URL credentials taken out: the one point before anything is served."""
    if isinstance(value, str):
        return redact(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def rows(context: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The page's rows: one per image, a cell per environment, grouped by the most urgent
    state of any cell (errors first)."""
    names = [e["name"] for e in context["environments"]]
    by_image: dict[str, dict[str, Any]] = {}
    for e in context["environments"]:
        for doc in e["images"]:
            by_image.setdefault(doc["image"], {})[e["name"]] = doc
    groups: dict[str, list[dict[str, Any]]] = {s: [] for s in STATES}
    for image in sorted(by_image):
        cells = [by_image[image].get(n) for n in names]
        state = min((STATES.index(c["state"]) for c in cells if c), default=len(STATES) - 1)
        groups[STATES[state]].append({"image": image, "cells": cells})
    return groups


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("imagebot.daemon", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_page(context: dict[str, Any], *, environments: list[str], reload: str = "/") -> str:
    groups = rows(context)
    return _templates.get_template("status.html").render(
        **context,
        groups=groups,
        shown=sum(len(g) for g in groups.values()),
        states=STATES,
        all_environments=environments,
        reload=reload,
    )


def routes(service: Service, access: Access | None) -> list[Route]:
    def guarded(
        endpoint: Callable[[Request], Any],
    ) -> Callable[[Request], Any]:
        async def check(request: Request) -> Response:
            if access is not None and not access.allows(request.headers.get("authorization", "")):
                scheme = "Bearer" if access.token else 'Basic realm="imagebot"'
                return JSONResponse(
                    {"error": "authentication required"},
                    status_code=401,
                    headers={"WWW-Authenticate": scheme},
                )
            result: Response = await endpoint(request)
            return result

        return check

    def context(request: Request) -> dict[str, Any]:
        p = request.query_params
        return status_context(
            service,
            service.timer.now(),
            q=p.get("q", ""),
            environment=p.get("environment", ""),
            state=p.get("state", ""),
        )

    async def api(request: Request) -> Response:
        return JSONResponse(await anyio.to_thread.run_sync(context, request))

    async def page(request: Request) -> Response:
        def build() -> str:
            names = pipeline_order(service.policies.state.environments)
            url = request.url
            return render_page(
                context(request),
                environments=names,
                reload=url.path + (f"?{url.query}" if url.query else ""),
            )

        return HTMLResponse(await anyio.to_thread.run_sync(build))

    return [Route("/api/v1/status", guarded(api)), Route("/", guarded(page))]

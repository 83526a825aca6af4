"""``GET /api/v1/status`` and ``GET /``: the daemon's last decision records as JSON and as a
page.

Both are built from one context (:meth:`StatusView.context`), as datasette builds a page and
its JSON twin, so the page and the API cannot disagree. Nothing here calls a registry, git or a
forge: it reads what each environment's last cycle recorded, and only the time left on a
gate moves with the clock. Every string goes through one redaction before it is served.
The JSON gives the time a gate opens (``waiting.until``); the page, the time left.
"""

from __future__ import annotations

import base64
import hmac
import json
import queue
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from imagebot import logs
from imagebot import redact as secrets
from imagebot.core.durations import format_duration
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.record import ImageRecord
from imagebot.errors import ImagebotError
from imagebot.git.repo import redact as redact_url

if TYPE_CHECKING:
    from imagebot.daemon.events import LastCycle
    from imagebot.daemon.service import Service

log = logs.get_logger("imagebot.daemon.status")

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


def _until(r: ImageRecord, decided: datetime) -> datetime | None:
    """When the blocking gate opens, if time opens it (soak, window, freeze)."""
    data = dict(r.waiting.data or {}) if r.waiting else {}
    left, until = data.get("left_seconds"), data.get("until")
    if isinstance(left, int | float):
        return decided + timedelta(seconds=float(left))
    return datetime.fromisoformat(until) if isinstance(until, str) else None


def image_json(r: ImageRecord, loaded: LoadedPolicy, decided: datetime) -> dict[str, Any]:
    """The record's JSON with what a reader needs beside it: state, when the gate opens,
    links, and the command for each manual action. It changes only with the record."""
    doc = r.to_json()
    env, image = r.environment, r.image
    doc["environment"] = env
    doc["state"] = _state(r)
    doc["since"]["url"] = commit_url(loaded, r.running.commit)
    until = _until(r, decided)
    doc["waiting"] = (
        None
        if r.waiting is None
        else {
            "gate": r.waiting.gate,
            "reason": r.waiting.message,
            "until": until.isoformat(timespec="seconds") if until else None,
        }
    )
    for hold in doc["holds"]:
        hold["lift"] = f"imagebot release {env} {image}"
    doc["commands"] = {
        op: f"imagebot {op} {env} {image}" for op in ("promote", "hold", "release", "rollback")
    }
    return doc


def _served(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The record's JSON, and its text, with URL credentials and remembered secrets taken
    out: the one point before a record is served. One pass over the text instead of a walk
    over every string: ``json.dumps`` puts a space between tokens, so a URL's match never
    spans two strings, and a secret is looked for as JSON writes it too."""
    text = json.dumps(doc)
    clean = redact(text)
    return (doc if clean == text else json.loads(clean)), clean


def redact(text: str) -> str:
    """``text`` without URL credentials or any secret imagebot read (forge tokens, the
    webhook secret, registry passwords)."""
    return secrets.redact(redact_url(text) if "@" in text else text)


def _redacted(value: Any) -> Any:
    """Every string through :func:`redact` (the records: :func:`_served`)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _matches(doc: dict[str, Any], q: str, state: str) -> bool:
    if state and doc["state"] != state:
        return False
    if not q:
        return True
    words = (doc["image"], doc["repository"], doc["running"]["tag"] or "", doc["candidate"] or "")
    return any(q in w.lower() for w in words)


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("imagebot.daemon", "templates"),
    autoescape=True,
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)
#: In a cell rendered once per cycle, the gate's opening time; each request writes the time
#: left in its place.
_LEFT = re.compile("\x00(\\d+)\x00")
_PART = re.compile('"\\\\u0000(\\d+)"')  # where an environment's images go in the JSON


@dataclass(frozen=True, eq=False)  # one is equal only to itself
class _Rendered:
    """One environment's last cycle as served: its records' JSON, and each image's page cell
    (and, under ``<image``, the head of its row)."""

    last: LastCycle
    docs: tuple[dict[str, Any], ...]
    json: bytes  # every image's, as served
    texts: Mapping[str, str]  # each image's JSON
    cells: Mapping[str, str]


class StatusView:
    """``/api/v1/status`` and ``/`` over the service's last records. Each environment's records
    are turned into JSON and page cells once, in the renderer's thread as soon as its cycle
    has left them: neither the cycle nor a request waits for it. A request filters and joins
    the newest rendering (the one before, while the next one is made)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._rendered: dict[str, _Rendered] = {}
        self._rows: tuple[tuple[Any, ...], tuple[dict[str, tuple[int, Markup]], int]] | None = None
        self._lock = threading.Lock()
        self._queued: Counter[str] = Counter()  # renders asked for and not done, by environment
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._renderer: threading.Thread | None = None
        service.decisions.listeners.append(self.refresh)

    def refresh(self, name: str) -> None:
        """``name``'s cycle left new records: have them rendered in the background."""
        with self._lock:
            self._queued[name] += 1
            if self._renderer is None:
                self._renderer = threading.Thread(target=self._render, daemon=True)
                self._renderer.start()
        self._queue.put(name)

    def _render(self) -> None:
        """The renderer's thread: each environment's newest records (and the unfiltered page's
        rows, as a request asks for them), as cycles leave them."""
        while True:
            name = self._queue.get()
            last = self.service.last.get(name)
            try:
                if last is not None and name in self.service.policies.state.environments:
                    self._environment(name, last, fresh=True)
                    self.page(self.service.timer.now(), **dict.fromkeys(FILTERS, ""))
            except Exception as exc:  # a request renders them then, and says what failed
                log.error("status_render_failed", environment=name, error=repr(exc))
            with self._lock:
                self._queued[name] -= 1

    def _environment(self, name: str, last: LastCycle, *, fresh: bool = False) -> _Rendered:
        kept = self._rendered.get(name)
        if kept is not None and (kept.last is last or (self._queued[name] > 0 and not fresh)):
            return kept
        loaded = self.service.policies.state.environments[name]
        # One document at a time: the C encoder holds the GIL while it runs, and the event
        # loop must get it back every few milliseconds.
        served = [_served(image_json(r, loaded, last.at)) for r in last.images]
        docs = tuple(doc for doc, _ in served)
        texts = {doc["image"]: text for doc, text in served}
        cell = _templates.get_template("cell.html").module.cell  # type: ignore[attr-defined]
        cells = {d["image"]: str(cell(d, _epoch(d))) for d in docs}
        cells |= {f"<{d['image']}": f'<tr><th scope="row">{escape(d["image"])}</th>' for d in docs}
        whole = ("[" + ",".join(texts.values()) + "]").encode()
        kept = _Rendered(last, docs, whole, texts, cells)
        self._rendered[name] = kept
        return kept

    def context(
        self, now: datetime, *, q: str = "", environment: str = "", state: str = ""
    ) -> dict[str, Any]:
        """Everything both forms show, filtered as asked; ``images`` of each environment is
        its rendering and the records that match."""
        service = self.service
        loaded = service.policies.state.environments
        q = q.strip().lower()
        for name in set(self._rendered) - set(loaded):
            self._rendered.pop(name, None)  # another request may have dropped it too
        environments = []
        for name in pipeline_order(loaded):
            last = service.last.get(name)
            if environment and name != environment:
                continue
            rendered = self._environment(name, last) if last is not None else None
            docs = rendered.docs if rendered else ()
            due = service.decisions.next_due.get(name)
            promote = loaded[name].policy.promote
            environments.append(
                {
                    "name": name,
                    "upstream": promote.from_ if promote else None,
                    "publish": loaded[name].policy.publish.mode,
                    "last_cycle": None if last is None else _cycle_json(last),
                    "next_cycle": due.isoformat(timespec="seconds") if due else None,
                    "images": (rendered, [d for d in docs if _matches(d, q, state)]),
                }
            )
        return {
            "api_version": API_VERSION,
            "generated_at": now.isoformat(timespec="seconds"),
            "filters": {"q": q, "environment": environment, "state": state},
            # what /readyz says of this replica: leadership, shards, configuration problems
            "replica": _redacted({k: v for k, v in service.readiness()[1].items() if k in REPLICA}),
            "environments": environments,
            # one C-level copy of the deque: safe beside the loop appending to it
            "events": _redacted(list(service.decisions.events)[::-1]),
        }

    def api(self, now: datetime, **filters: str) -> bytes:
        """The JSON document: each environment's images as rendered once, unless filtered."""
        doc = self.context(now, **filters)
        parts = []
        for n, env in enumerate(doc["environments"]):
            rendered, docs = env["images"]
            if rendered is None or len(docs) == len(rendered.docs):
                parts.append(rendered.json if rendered else b"[]")
            else:
                shown = ",".join(rendered.texts[d["image"]] for d in docs)
                parts.append(f"[{shown}]".encode())
            env["images"] = f"\x00{n}"
        pieces = _PART.split(json.dumps(doc))  # text, part number, text, …
        return b"".join(parts[int(p)] if i % 2 else p.encode() for i, p in enumerate(pieces))

    def page(self, now: datetime, *, reload: str = "/", **filters: str) -> str:
        doc = self.context(now, **filters)
        # The rows change only with a cycle or the filters: the last page's are kept.
        key = (tuple(e["images"][0] for e in doc["environments"]), *filters.items())
        if self._rows is None or self._rows[0] != key:
            self._rows = key, self._group(doc)
        groups, shown = self._rows[1]
        html = _templates.get_template("status.html").render(
            **doc,
            groups=groups,
            shown=shown,
            states=STATES,
            all_environments=pipeline_order(self.service.policies.state.environments),
            reload=reload,
        )
        stamp = now.timestamp()
        return _LEFT.sub(
            lambda m: format_duration(timedelta(seconds=max(int(m[1]) - stamp, 0))), html
        )

    @staticmethod
    def _group(doc: dict[str, Any]) -> tuple[dict[str, tuple[int, Markup]], int]:
        """One row per image, grouped by the most urgent state of its cells."""
        names = [e["name"] for e in doc["environments"]]
        by_image: dict[str, dict[str, tuple[dict[str, Any], str, str]]] = {}
        for e in doc["environments"]:
            rendered, docs = e["images"]
            for d in docs:
                image = d["image"]
                cells = rendered.cells
                by_image.setdefault(image, {})[e["name"]] = (d, cells[image], cells[f"<{image}"])
        groups: dict[str, list[str]] = {s: [] for s in STATES}
        for image in sorted(by_image):
            cells = by_image[image]
            state = min(STATES.index(d["state"]) for d, _, _ in cells.values())
            row = "".join(cells[n][1] if n in cells else "<td>—</td>" for n in names)
            head = next(iter(cells.values()))[2]
            groups[STATES[state]].append(f"{head}{row}</tr>")
        return {s: (len(rows), Markup("\n".join(rows))) for s, rows in groups.items()}, len(
            by_image
        )


FILTERS = ("q", "environment", "state")
REPLICA = ("leader", "shards", "policy_problems", "kept_last_good", "config_problems")


def _epoch(doc: dict[str, Any]) -> str | None:
    """The placeholder of the time left on the blocking gate (see ``_LEFT``)."""
    until = (doc["waiting"] or {}).get("until")
    return f"\x00{int(datetime.fromisoformat(until).timestamp())}\x00" if until else None


def _cycle_json(last: LastCycle) -> dict[str, Any]:
    return {
        "start": (last.at - timedelta(seconds=last.seconds)).isoformat(timespec="seconds"),
        "duration_seconds": round(last.seconds, 3),
        "result": "ok" if last.ok else "failed",
        "problems": [redact(last.error)] if last.error else [],
    }


def routes(service: Service, access: Access | None) -> list[Route]:
    view = StatusView(service)

    def allowed(request: Request) -> Response | None:
        if access is None or access.allows(request.headers.get("authorization", "")):
            return None
        scheme = "Bearer" if access.token else 'Basic realm="imagebot"'
        return JSONResponse(
            {"error": "authentication required"},
            status_code=401,
            headers={"WWW-Authenticate": scheme},
        )

    def filters(request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "") for k in FILTERS}

    async def api(request: Request) -> Response:
        refused = allowed(request)
        if refused is not None:
            return refused
        now = service.timer.now()
        body = await anyio.to_thread.run_sync(lambda: view.api(now, **filters(request)))
        return Response(body, media_type="application/json")

    async def page(request: Request) -> Response:
        refused = allowed(request)
        if refused is not None:
            return refused
        now, url = service.timer.now(), request.url
        reload = url.path + (f"?{url.query}" if url.query else "")
        html = await anyio.to_thread.run_sync(
            lambda: view.page(now, reload=reload, **filters(request))
        )
        return HTMLResponse(html)

    return [Route("/api/v1/status", api), Route("/", page)]

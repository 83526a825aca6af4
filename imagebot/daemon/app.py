"""The HTTP side of the daemon, a Starlette app: health, readiness, metrics and webhooks.

Hostile clients are bounded by the server, not trusted to behave: at most MAX_CONNECTIONS
connections (uvicorn answers 503 past it), a client that has not sent a request's headers
within the HTTP deadline is disconnected (:class:`_HeaderDeadline`), a webhook body must
arrive within the same deadline, and at most MAX_BODIES_IN_FLIGHT bodies are read at once —
so stalled clients hold a bounded amount of memory, and only for a bounded time.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from imagebot import logs
from imagebot.daemon import metrics as m
from imagebot.daemon.status_api import routes as status_routes
from imagebot.daemon.webhooks import (
    MAX_BODY,
    REPLAY_WINDOW,
    SENDERS,
    BadPayload,
    Seen,
    git_push,
)
from imagebot.daemon.webhooks import Request as WebhookRequest
from imagebot.redact import redact_value

if TYPE_CHECKING:
    from imagebot.daemon.service import Service

log = logs.get_logger("imagebot.daemon.http")

MAX_CONNECTIONS = 256
"""Connections served at once; a request on one more is answered 503."""
MAX_BODIES_IN_FLIGHT = 8
"""Webhook bodies read at once (each at most MAX_BODY); one more is answered 503."""
_CLOSE = {"Connection": "close"}  # the body was not read: the connection cannot be reused


class TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The body, refusing one over MAX_BODY (whatever Content-Length claims). A streamed
    body a little over it is read to its end and dropped before the refusal, so a client
    still sending reads the 413 rather than a reset connection; past twice MAX_BODY the
    connection is cut at once."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > 2 * MAX_BODY:
            raise TooLarge
        if size <= MAX_BODY:
            chunks.append(chunk)
    if size > MAX_BODY:
        raise TooLarge
    return b"".join(chunks)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def build_app(service: Service, *, deadline: float = 10.0) -> Starlette:
    bodies = anyio.Semaphore(MAX_BODIES_IN_FLIGHT)
    seen = Seen()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready, detail = service.readiness()
        return JSONResponse(redact_value(detail), status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        service.refresh_gauges()
        return Response(service.metrics.exposition(), media_type=m.CONTENT_TYPE)

    async def webhook(request: Request) -> Response:
        name = request.path_params["sender"]
        sender = SENDERS.get(name)
        if sender is None:
            return _error(f"unknown sender {name!r}", 404)
        secret = service.url_token if sender.in_url else service.webhook_secret
        if secret is None:
            off = (
                "set IMAGEBOT_WEBHOOK_URL_TOKEN or --webhook-url-token-file"
                if sender.in_url
                else "set IMAGEBOT_WEBHOOK_SECRET or --webhook-secret-file"
            )
            return _error(f"webhooks from {name} are off: {off}", 404)
        counter = service.metrics.webhooks
        req = WebhookRequest(
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=b"",
        )

        def refuse(outcome: str, message: str, status: int, **headers: str) -> Response:
            counter.labels(name, "refused").inc()
            if outcome == "unauthorized":
                service.metrics.errors.labels("webhook_auth").inc()
                log.warning("webhook_unauthorized", sender=name, client=_client(request))
            else:
                log.info("webhook_refused", sender=name, reason=outcome)
            return _error(message, status, {**_CLOSE, **headers})

        if not sender.signed and not sender.authenticate(req, secret):
            return refuse("unauthorized", "invalid or missing credentials", 401)
        try:
            bodies.acquire_nowait()
        except anyio.WouldBlock:
            return refuse("busy", "too many webhooks in flight; retry", 503, **{"Retry-After": "2"})
        try:
            with anyio.fail_after(deadline):
                body = await _body(request)
        except TooLarge:
            return refuse("too_large", f"body over {MAX_BODY} bytes", 413)
        except TimeoutError:
            return refuse("timeout", f"body not received within {deadline:g}s", 408)
        finally:
            bodies.release()
        req = WebhookRequest(headers=req.headers, query=req.query, body=body)
        if sender.signed and not sender.authenticate(req, secret):
            return refuse("unauthorized", "invalid or missing signature", 401)
        stamp = req.headers.get("x-imagebot-timestamp")
        now = time.time()
        if sender.signed and stamp is not None and not _fresh(stamp, now):
            return refuse("unauthorized", "timestamp outside the 5-minute window", 401)
        if git_push(req):  # whichever replica it reaches: every replica runs every policy
            service.look_at_policies()
            counter.labels(name, "accepted").inc()
            return JSONResponse({"policies": "fetching"}, status_code=202)
        try:
            pushes = sender.pushes(req)
        except BadPayload as exc:
            counter.labels(name, "refused").inc()
            log.warning("webhook_bad_payload", sender=name, error=str(exc))
            return _error(str(exc), 400)
        if not service.leading:  # before any is remembered: the sender retries the same one
            counter.labels(name, "refused").inc()
            return _error("not the leader; retry", 503, {"Retry-After": "2"})
        signature = hashlib.sha256(f"{stamp}.".encode() + body).hexdigest()
        if sender.signed and not seen.first(f"{name}:{signature}", now):
            return refuse("replayed", "this signature was already accepted", 409)
        pushes = [p for p in pushes if not p.event or seen.first(f"{name}#{p.event}", now)]
        environments, watched = service.on_pushes(pushes, sender=name)
        # Pulls, blob uploads and unwatched repositories are answered but start nothing.
        counter.labels(name, "accepted" if environments else "ignored").inc()
        log.info(
            "webhook_received", sender=name, pushes=len(pushes), watched=watched,
            environments=environments,
        )  # fmt: skip
        return JSONResponse({"pushes": len(pushes), "environments": environments}, status_code=202)

    status = service.options.status_page
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/webhooks/{sender}", webhook, methods=["POST"]),
            *(status_routes(service, service.options.status_access) if status else ()),
        ]
    )


def _fresh(stamp: str, now: float) -> bool:
    return stamp.isdigit() and abs(now - int(stamp)) <= REPLAY_WINDOW


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


class _HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection that has not sent a whole request
    head within ``deadline`` seconds of connecting (or of its previous response): uvicorn
    itself waits for a trickling client forever (slowloris)."""

    deadline = 10.0
    _timer: Any = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._timer is not None:
            self._timer.cancel()  # nothing left to close: let the connection go now

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(self.deadline, self._expire)

    def _expire(self) -> None:
        in_request = self.cycle is not None and not self.cycle.response_complete
        if not in_request and not self.transport.is_closing():
            self.transport.close()  # the app's body deadline covers a request under way


def server_config(service: Service, *, deadline: float) -> uvicorn.Config:
    """The HTTP server: the app and every bound on what clients may hold."""
    return uvicorn.Config(
        build_app(service, deadline=deadline),
        http=type("HeaderDeadline", (_HeaderDeadline,), {"deadline": deadline}),
        limit_concurrency=MAX_CONNECTIONS,
        timeout_keep_alive=5,
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=2,
    )

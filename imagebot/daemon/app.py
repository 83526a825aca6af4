"""The HTTP side of the daemon, a Starlette app: health, readiness, metrics and webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from imagebot import logs
from imagebot.daemon import metrics as m
from imagebot.daemon.status_api import routes as status_routes
from imagebot.daemon.webhooks import MAX_BODY, SENDERS, BadPayload
from imagebot.daemon.webhooks import Request as WebhookRequest

if TYPE_CHECKING:
    from imagebot.daemon.service import Service

log = logs.get_logger("imagebot.daemon.http")


class TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The body, refusing to read past MAX_BODY (whatever Content-Length claims)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(service: Service) -> Starlette:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        ready, detail = service.readiness()
        return JSONResponse(detail, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        service.refresh_gauges()
        return Response(service.metrics.exposition(), media_type=m.CONTENT_TYPE)

    async def webhook(request: Request) -> Response:
        name = request.path_params["sender"]
        sender = SENDERS.get(name)
        if sender is None:
            return JSONResponse({"error": f"unknown sender {name!r}"}, status_code=404)
        secret = service.webhook_secret
        if secret is None:
            return JSONResponse(
                {"error": "webhooks are off: set IMAGEBOT_WEBHOOK_SECRET or a secret file"},
                status_code=404,
            )
        counter = service.metrics.webhooks
        try:
            body = await _body(request)
        except TooLarge:
            counter.labels(name, "refused").inc()
            return JSONResponse({"error": f"body over {MAX_BODY} bytes"}, status_code=413)
        req = WebhookRequest(
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
        )
        if not sender.authenticate(req, secret):
            counter.labels(name, "refused").inc()
            service.metrics.errors.labels("webhook_auth").inc()
            log.warning("webhook_unauthorized", sender=name, client=_client(request))
            return JSONResponse({"error": "invalid or missing signature"}, status_code=401)
        try:
            pushes = sender.pushes(req)
        except BadPayload as exc:
            counter.labels(name, "refused").inc()
            log.warning("webhook_bad_payload", sender=name, error=str(exc))
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not service.leading:
            counter.labels(name, "refused").inc()
            return JSONResponse(
                {"error": "not the leader; retry"}, status_code=503, headers={"Retry-After": "2"}
            )
        environments = service.on_pushes(pushes, sender=name)
        # Pulls, blob uploads and unwatched repositories are answered but start nothing.
        counter.labels(name, "accepted" if environments else "ignored").inc()
        log.info("webhook_received", sender=name, pushes=len(pushes), environments=environments)
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


def _client(request: Request) -> str:
    return request.client.host if request.client else ""

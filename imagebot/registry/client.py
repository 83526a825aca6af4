"""The OCI Distribution v2 client: tags, digests and image facts for any registry.

One :class:`RegistryClient` serves every registry of a process. Per registry host it keeps
an ``httpx.AsyncClient`` with that host's TLS settings, the auth state (challenge, tokens)
and its politeness (concurrency limit, token bucket, retry and rate-limit waits), so one
slow or failing registry never holds up another. httpx exceptions are mapped to
:class:`~imagebot.errors.RegistryError` here and nowhere else.
"""

from __future__ import annotations

import json
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import httpx

from imagebot import logs
from imagebot.clock import Clock, Sleep, utc_now
from imagebot.core.reference import DIGEST_RE, normalize_repository
from imagebot.errors import (
    AuthError,
    ImagebotError,
    NotFound,
    RateLimited,
    RegistryError,
)
from imagebot.registry import manifests as mf
from imagebot.registry.auth import RegistryAuth, pull_scope
from imagebot.registry.cache import CachedPage, TagCache
from imagebot.registry.credentials import AnonymousProvider, CredentialProvider
from imagebot.registry.limits import (
    CredentialScope,
    DeadlineExceeded,
    ResponseTooLarge,
    bounded_send,
    same_origin,
)
from imagebot.registry.politeness import (
    RETRY_STATUS,
    Politeness,
    RetryPolicy,
    TokenBucket,
    docker_hub_quota_window,
    retry_after,
    transport_retryable,
)
from imagebot.registry.settings import RegistriesSettings, RegistryConfig
from imagebot.registry.tags import BadPage, TagCollector, newness, next_link, page_tags

log = logs.get_logger("imagebot.registry")

#: Docker Hub's API lives on another host than the name users write.
API_HOSTS = {"docker.io": "registry-1.docker.io"}

USER_AGENT = "imagebot (+https://github.com/imagebot)"


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository split for the API: ``host`` (as configured) and ``path``."""

    host: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.host}/{self.path}"


@dataclass
class _Registry:
    config: RegistryConfig
    http: httpx.AsyncClient
    auth: RegistryAuth
    politeness: Politeness
    base_url: str
    scope: CredentialScope


class RegistryClient:
    """Async context manager; every public method raises only RegistryError (and subclasses)."""

    def __init__(
        self,
        *,
        settings: RegistriesSettings | None = None,
        credentials: CredentialProvider | None = None,
        cache: TagCache | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        self.settings = settings or RegistriesSettings()
        self._credentials = credentials or AnonymousProvider()
        self._owns_cache = cache is None
        self.cache = cache if cache is not None else TagCache(":memory:")
        self._clock: Clock = clock or utc_now
        self._sleep: Sleep = sleep or anyio.sleep
        self._transport = transport
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._registries: dict[str, _Registry] = {}
        # httpx event hooks on every registry's client: the daemon counts responses by
        # registry and status for /metrics without the client knowing about Prometheus.
        self._event_hooks = dict(event_hooks or {})
        self.requests = 0
        """Requests sent (registry and token endpoints), retries included."""
        self._expired: set[str] = set()
        """Repositories listed afresh next time, whatever ``scan_interval`` says."""

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for reg in self._registries.values():
            await reg.http.aclose()
        self._registries.clear()
        if self._owns_cache:
            self.cache.close()
        else:
            self.cache.flush()

    # ----------------------------------------------------------------- public API

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (pagination followed, artifact tags dropped, capped)."""
        repo = self._repo(repository)
        reg = self._registry(repo.host)
        cfg = reg.config
        if cfg.scan_interval > 0 and repo.name not in self._expired:
            listed = self.cache.listing(repo.name)
            if listed is not None:
                age = self._clock().timestamp() - listed[1]
                if 0 <= age < cfg.scan_interval:  # a clock set back lists again
                    log.debug("tags_reused", registry=repo.host, repository=repo.path, age=age)
                    return listed[0]
        collector = TagCollector(cap=cfg.tag_cap, order=cfg.tag_order)
        # One deadline for the whole listing: every page, retry and Retry-After wait.
        with anyio.move_on_after(cfg.repository_deadline) as deadline:
            await self._list_pages(reg, repo, collector)
        if deadline.cancelled_caught:
            raise RegistryError(
                f"tags/list: not finished within {cfg.repository_deadline:g}s"
                " (repository_deadline)",
                **self._names(repo),
            )
        if collector.capped:
            log.warning(
                "tag_cap_reached",
                registry=repo.host,
                repository=repo.name,
                cap=cfg.tag_cap,
                listed=collector.seen,
                kept={"newest-first": "first", "oldest-first": "last"}.get(
                    cfg.tag_order, "newest by version"
                ),
                order=cfg.tag_order,
                dropped=len(collector.dropped),
                # the newest of the dropped tags: the ones a user would miss
                dropped_tags=sorted(collector.dropped, key=newness, reverse=True)[:20],
            )
        tags = collector.tags
        self.cache.record_tags(repo.name, tags, self._clock())
        self._expired.discard(repo.name)  # only once listed: a failed listing stays due
        if self.cache.pending_rows >= self.cache.FLUSH_ROWS:
            # SQLite work in a thread: the event loop keeps the registry busy meanwhile.
            await anyio.to_thread.run_sync(self.cache.flush)
        return tags

    def expire(self, repository: str) -> None:
        """The next listing of ``repository`` asks the registry, whatever ``scan_interval``
        says (a webhook reported a push)."""
        self._expired.add(self._repo(repository).name)

    async def _list_pages(self, reg: _Registry, repo: Repo, collector: TagCollector) -> None:
        cfg = reg.config
        url: str | None = f"{reg.base_url}/v2/{repo.path}/tags/list?n={cfg.page_size}"
        visited: set[str] = set()
        while url is not None:
            if url in visited:
                raise RegistryError(
                    f"tags/list pagination loops back to {url}", **self._names(repo)
                )
            if visited and not same_origin(reg.base_url, url):  # the first is built here
                # next_link refuses these; a page cached by an older version might not.
                raise RegistryError(
                    f"tags/list: next page {url} is not on the registry", **self._names(repo)
                )
            if len(visited) >= cfg.max_pages:
                raise RegistryError(
                    f"tags/list: more than {cfg.max_pages} pages (max_pages; the default"
                    f" follows tag_cap {cfg.tag_cap} and page_size {cfg.page_size})",
                    **self._names(repo),
                )
            visited.add(url)
            tags, url = await self._tags_page(reg, repo, url)
            collector.add(tags)
            if collector.done and url is not None:
                collector.stopped_early = True
                break

    async def digest(self, repository: str, tag: str) -> str:
        """The digest ``tag`` points to, by HEAD (no pull counted on Docker Hub).

        For a multi-arch image it is the index digest, as ``docker pull`` pins it.
        """
        repo = self._repo(repository)
        reg = self._registry(repo.host)
        url = f"{reg.base_url}/v2/{repo.path}/manifests/{tag}"
        response = await self._call(reg, repo, "HEAD", url, {"Accept": mf.ACCEPT}, what=tag)
        digest: str = response.headers.get("docker-content-digest", "").strip()
        if digest:
            if not DIGEST_RE.match(digest):
                raise RegistryError(
                    f"tag {tag}: invalid Docker-Content-Digest {digest!r}", **self._names(repo)
                )
            return digest
        # Some registries leave the header off HEAD answers; only then is a GET needed.
        response = await self._call(reg, repo, "GET", url, {"Accept": mf.ACCEPT}, what=tag)
        self._manifest(repo, tag, response)
        return response.headers.get("docker-content-digest") or mf.sha256_digest(response.content)

    async def image_info(
        self,
        repository: str,
        tag: str,
        *,
        created: bool = False,
        platform: str | None = None,
    ) -> mf.ImageInfo:
        """Digest, OCI source/revision annotations and, if ``created``, the build time.

        A multi-arch index is resolved to ``platform`` (default: the registry's setting,
        ``linux/amd64``); NotFound if the index lacks it. The build time is read from the
        config blob, one more request, so only when asked for.
        """
        repo = self._repo(repository)
        reg = self._registry(repo.host)
        url = f"{reg.base_url}/v2/{repo.path}/manifests/{tag}"
        response = await self._call(reg, repo, "GET", url, {"Accept": mf.ACCEPT}, what=tag)
        top = self._manifest(repo, tag, response)
        digest = response.headers.get("docker-content-digest") or mf.sha256_digest(response.content)
        index: mf.Manifest | None = None
        image = top
        platform_digest = None
        offered: tuple[str, ...] = ()
        if mf.is_index(top):
            index = top
            offered = mf.platforms(index)
            wanted = platform or reg.config.platform
            entry = mf.choose_platform(index, wanted)
            if entry is None:
                raise NotFound(
                    f"tag {tag}: no {wanted} image (offers {', '.join(offered) or 'none'})",
                    **self._names(repo),
                )
            platform_digest = entry["digest"]
            sub = await self._call(
                reg,
                repo,
                "GET",
                f"{reg.base_url}/v2/{repo.path}/manifests/{platform_digest}",
                {"Accept": mf.ACCEPT},
                what=f"{tag} ({wanted})",
            )
            image = self._manifest(repo, tag, sub, digest=platform_digest)
            if mf.is_index(image):
                raise RegistryError(
                    f"tag {tag}: platform entry {platform_digest} is another index",
                    **self._names(repo),
                )
        notes = mf.merged_annotations(index, image)
        when = None
        if created:
            config = image.get("config", {})
            blob = await self._call(
                reg,
                repo,
                "GET",
                f"{reg.base_url}/v2/{repo.path}/blobs/{config.get('digest')}",
                {"Accept": "application/json, */*"},
                what=f"{tag} config",
            )
            try:
                mf.verify_digest(blob.content, str(config.get("digest")))
                when = mf.config_created(blob.content)
            except mf.BadManifest as exc:
                raise RegistryError(f"tag {tag}: {exc}", **self._names(repo)) from None
            when = when or mf.parse_created(notes.get(mf.CREATED))
        return mf.ImageInfo(
            digest=digest,
            created=when,
            source=notes.get(mf.SOURCE),
            revision=notes.get(mf.REVISION),
            platform_digest=platform_digest,
            platforms=offered,
        )

    async def first_seen(self, repository: str) -> dict[str, datetime]:
        """When this process's cache first saw each tag of ``repository``."""
        return self.cache.first_seen(self._repo(repository).name)

    async def fetch(self, repository: str, path: str, *, accept: str) -> bytes | None:
        """The body of ``GET /v2/<repository>/<path>`` (``manifests/<ref>``, ``blobs/<digest>``,
        ``referrers/<digest>``), or None when the registry answers 404."""
        repo = self._repo(repository)
        reg = self._registry(repo.host)
        url = f"{reg.base_url}/v2/{repo.path}/{path}"
        try:
            response = await self._call(reg, repo, "GET", url, {"Accept": accept}, what=path)
        except NotFound:
            return None
        return response.content

    async def scan(self, repositories: Iterable[str]) -> dict[str, list[str] | RegistryError]:
        """List many repositories concurrently; each gets its tags or its own error."""
        results: dict[str, list[str] | RegistryError] = {}

        async def one(repository: str) -> None:
            try:
                results[repository] = await self.list_tags(repository)
            except RegistryError as exc:
                log.error("scan_failed", repository=repository, error=str(exc))
                results[repository] = exc

        async with anyio.create_task_group() as tg:
            for repository in dict.fromkeys(repositories):
                tg.start_soon(one, repository)
        await anyio.to_thread.run_sync(self.cache.flush)
        return results

    # ----------------------------------------------------------------- internals

    def _repo(self, repository: str) -> Repo:
        try:
            name = normalize_repository(repository)
        except ImagebotError as exc:
            raise RegistryError(f"invalid repository {repository!r}: {exc}") from None
        host, _, path = name.partition("/")
        return Repo(host=host, path=path)

    @staticmethod
    def _names(repo: Repo) -> dict[str, str]:
        return {"registry": repo.host, "repository": repo.path}

    def _registry(self, host: str) -> _Registry:
        reg = self._registries.get(host)
        if reg is not None:
            return reg
        cfg = self.settings.for_host(host)
        bucket = (
            TokenBucket(cfg.rate, cfg.burst, clock=self._clock, sleep=self._sleep)
            if cfg.rate
            else None
        )
        api_host = API_HOSTS.get(host, host)
        base_url = f"{'http' if cfg.insecure else 'https'}://{api_host}"
        auth = RegistryAuth(host, credentials=self._credentials, clock=self._clock)
        scope = CredentialScope(base_url, realm=lambda: auth.realm)
        # Here, not at the top: httpx imports httpcore only when a transport is made, so
        # `imagebot tags --help` and friends start without it.
        from imagebot.registry.transport import pooled_transport

        limits = httpx.Limits(
            max_connections=cfg.concurrency + 4, max_keepalive_connections=cfg.concurrency
        )
        http = httpx.AsyncClient(
            transport=self._transport or pooled_transport(verify=self._tls(cfg), limits=limits),
            timeout=httpx.Timeout(cfg.timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            event_hooks={
                **self._event_hooks,
                "request": [scope, *self._event_hooks.get("request", [])],
            },
        )
        reg = _Registry(
            config=cfg,
            http=http,
            auth=auth,
            politeness=Politeness(concurrency=cfg.concurrency, bucket=bucket),
            base_url=base_url,
            scope=scope,
        )
        self._registries[host] = reg
        return reg

    @staticmethod
    def _tls(cfg: RegistryConfig) -> ssl.SSLContext | bool:
        if cfg.insecure or not (cfg.ca_file or cfg.client_cert):
            return True
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file)
            if cfg.client_cert:
                context.load_cert_chain(cfg.client_cert, cfg.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError(f"TLS settings: {exc}", registry=cfg.host) from None
        return context

    async def _tags_page(
        self, reg: _Registry, repo: Repo, url: str
    ) -> tuple[list[str], str | None]:
        cached = self.cache.page(repo.name, url)
        headers = {"Accept": "application/json"}
        if cached is not None:
            headers["If-None-Match"] = cached.etag
        response = await self._call(reg, repo, "GET", url, headers, what="tags", ok=(200, 304))
        if response.status_code == 304 and cached is not None:
            return cached.tags, cached.next
        try:
            _require_json(response)
            tags = page_tags(response.json())
            nxt = next_link(response.headers.get("link"), str(response.url), registry=reg.base_url)
        except (BadPage, ValueError) as exc:
            raise RegistryError(f"tags/list: {exc}", **self._names(repo)) from None
        etag = response.headers.get("etag")
        if etag:
            self.cache.store_page(repo.name, url, CachedPage(etag=etag, tags=tags, next=nxt))
        return tags, nxt

    def _manifest(
        self, repo: Repo, tag: str, response: httpx.Response, *, digest: str | None = None
    ) -> mf.Manifest:
        try:
            if digest is not None:
                mf.verify_digest(response.content, digest)
            return mf.parse_manifest(response.content, response.headers.get("content-type"))
        except mf.BadManifest as exc:
            raise RegistryError(f"tag {tag}: {exc}", **self._names(repo)) from None

    async def _call(
        self,
        reg: _Registry,
        repo: Repo,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send with auth, politeness and retries; return a response with status in ``ok``."""
        scope = pull_scope(repo.path)
        names = self._names(repo)
        answered = False
        tries = 0
        auth: str | None = None
        answer: str | None = None

        async def send_token(request: httpx.Request) -> httpx.Response:
            return await self._send_token(reg, repo, request)

        while True:
            self._check_blocked(reg, names)
            auth = answer if answer is not None else await reg.auth.header(scope, send=send_token)
            answer = None
            try:
                request = reg.http.build_request(method, url, headers=headers)
            except httpx.InvalidURL as exc:
                raise RegistryError(f"{what}: invalid URL {url!r}: {exc}", **names) from None
            if auth is not None:
                request.headers["Authorization"] = auth
            try:
                response = await self._send(reg, request)
            except httpx.HTTPError as exc:
                tries += 1
                if not transport_retryable(exc) or tries >= self.retry.attempts:
                    raise RegistryError(f"{what}: {_describe(exc)}", **names) from None
                await self._backoff(reg, repo, tries, reason=_describe(exc))
                continue
            status = response.status_code
            if status in ok:
                return response
            if status == 401:
                if not same_origin(reg.base_url, response.url):
                    # A challenge from wherever the registry redirected us is not the
                    # registry's: answering it would hand our credentials to that host.
                    raise AuthError(
                        f"{what}: redirected to {response.url.netloc.decode('ascii')}, which"
                        " asks for credentials; imagebot sends credentials only to the"
                        " registry itself and the token realm it names",
                        **names,
                    )
                if answered:
                    raise AuthError(
                        f"{what}: still unauthorized (401) after "
                        + ("a token refresh" if auth and auth.startswith("Bearer") else "login"),
                        **names,
                    )
                answered = True
                answer = await reg.auth.answer(response, scope, sent=auth, send=send_token)
                continue
            if status == 429:
                tries += 1
                await self._rate_limited(reg, repo, response, tries, what)
                continue
            if status in RETRY_STATUS:
                tries += 1
                if tries >= self.retry.attempts:
                    raise RegistryError(
                        f"{what}: HTTP {status} after {tries} tries{_error_detail(response)}",
                        **names,
                    )
                await self._backoff(reg, repo, tries, reason=f"HTTP {status}")
                continue
            raise _status_error(status, what, response, names)

    async def _send(self, reg: _Registry, request: httpx.Request) -> httpx.Response:
        pol = reg.politeness
        async with pol.limiter:
            if pol.bucket is not None:
                await pol.bucket.acquire()
            self.requests += 1
            return await bounded_send(
                reg.http,
                request,
                max_bytes=reg.config.max_response_bytes,
                deadline=reg.config.deadline,
            )

    async def _send_token(
        self, reg: _Registry, repo: Repo, request: httpx.Request
    ) -> httpx.Response:
        """Ask the token realm; network errors and 5xx are retried like registry calls."""
        tries = 0
        while True:
            try:
                self.requests += 1
                # No redirects: a token request carries credentials (a refresh token in
                # a POST body survives a 307), so it goes to the realm and nowhere else.
                response = await bounded_send(
                    reg.http,
                    request,
                    max_bytes=reg.config.max_response_bytes,
                    deadline=reg.config.deadline,
                    follow_redirects=False,
                )
            except httpx.HTTPError as exc:
                tries += 1
                if not transport_retryable(exc) or tries >= self.retry.attempts:
                    raise AuthError(
                        f"token endpoint: {_describe(exc)}", **self._names(repo)
                    ) from None
                await self._backoff(reg, repo, tries, reason=_describe(exc))
                continue
            if response.status_code in RETRY_STATUS and tries + 1 < self.retry.attempts:
                tries += 1
                await self._backoff(reg, repo, tries, reason=f"token HTTP {response.status_code}")
                continue
            if response.is_redirect:
                raise AuthError(
                    f"token endpoint {request.url.netloc.decode('ascii')} redirects"
                    f" (HTTP {response.status_code}); token requests are not redirected",
                    **self._names(repo),
                )
            return response

    def _check_blocked(self, reg: _Registry, names: dict[str, str]) -> None:
        pol = reg.politeness
        if pol.blocked_until is not None:
            left = (pol.blocked_until - self._clock()).total_seconds()
            if left > 0:
                raise RateLimited(pol.blocked_reason, retry_after=left, **names)
            pol.blocked_until = None

    async def _backoff(self, reg: _Registry, repo: Repo, tries: int, *, reason: str) -> None:
        wait = self.retry.backoff(tries - 1, self._rng)
        log.warning(
            "registry_retry",
            registry=repo.host,
            repository=repo.path,
            reason=reason,
            attempt=tries,
            wait=round(wait, 3),
        )
        await self._sleep(wait)

    async def _rate_limited(
        self, reg: _Registry, repo: Repo, response: httpx.Response, tries: int, what: str
    ) -> None:
        now = self._clock()
        wait = retry_after(response, now)
        quota = docker_hub_quota_window(response)
        if wait is None and quota is not None:
            wait = quota
        if wait is not None and wait > self.retry.max_wait:
            # Waiting hours for a quota helps nobody: fail this registry fast for that long.
            reason = f"{what}: rate limited (HTTP 429), retry after {wait:.0f}s"
            reg.politeness.blocked_until = now + timedelta(seconds=wait)
            reg.politeness.blocked_reason = reason
            raise RateLimited(reason, retry_after=wait, **self._names(repo))
        if tries >= self.retry.attempts:
            raise RateLimited(
                f"{what}: still rate limited (HTTP 429) after {tries} tries",
                retry_after=wait,
                **self._names(repo),
            )
        if wait is None:
            wait = self.retry.backoff(tries - 1, self._rng)
        log.warning("registry_rate_limited", registry=repo.host, repository=repo.path, wait=wait)
        await self._sleep(wait)


def _require_json(response: httpx.Response) -> None:
    kind = mf.media_type(response.headers.get("content-type"))
    if kind and "json" not in kind:
        raise BadPage(f"expected JSON, got {kind}")


def _describe(exc: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connection timed out",
        httpx.ReadTimeout: "no answer in time",
        httpx.ConnectError: "cannot connect",
        httpx.RemoteProtocolError: "connection dropped",
        DeadlineExceeded: "too slow",
        ResponseTooLarge: "answer too large",
    }
    kind = kinds.get(type(exc), type(exc).__name__)
    detail = str(exc)
    return f"{kind} ({detail})" if detail else kind


def _error_detail(response: httpx.Response) -> str:
    """The registry's own error text: ``{"errors": [{"code", "message"}]}``, or the page type."""
    kind = mf.media_type(response.headers.get("content-type"))
    if kind.startswith("text/html"):
        return " (an HTML error page)"
    try:
        body: Any = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        parts = [
            ": ".join(str(e.get(k)) for k in ("code", "message") if e.get(k))
            for e in body["errors"]
            if isinstance(e, dict)
        ]
        text = "; ".join(p for p in parts if p)
        return f": {text}" if text else ""
    return ""


def _status_error(
    status: int, what: str, response: httpx.Response, names: dict[str, str]
) -> RegistryError:
    detail = _error_detail(response)
    if status == 404:
        return NotFound(f"{what}: not found (404){detail}", **names)
    if status == 403:
        return AuthError(f"{what}: access denied (403){detail}", **names)
    return RegistryError(f"{what}: HTTP {status}{detail}", **names)

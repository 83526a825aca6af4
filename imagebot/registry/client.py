"""The OCI Distribution v2 client: tags, digests and image facts for any registry.

One :class:`RegistryClient` serves every registry of a process. Per registry host it keeps
an ``httpx.AsyncClient`` built on httpx's seams: that host's TLS settings, its auth as an
``httpx.Auth`` flow (:mod:`.auth`) and its politeness as a transport wrapping the network
(:mod:`.politeness`), so one slow or failing registry never holds up another. A request here
is "send, map the status": httpx exceptions become :class:`~imagebot.errors.RegistryError`
here and nowhere else.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
import httpx

from imagebot import logs
from imagebot.cache import Cache, CachedPage
from imagebot.clock import Clock, Sleep, utc_now
from imagebot.core.reference import DIGEST_RE, normalize_repository
from imagebot.errors import AuthError, ImagebotError, NotFound, RateLimited, RegistryError
from imagebot.registry import manifests as mf
from imagebot.registry.auth import RegistryAuth
from imagebot.registry.credentials import AnonymousProvider, CredentialProvider
from imagebot.registry.limits import MAX_REDIRECTS, CredentialScope, same_origin
from imagebot.registry.politeness import PoliteTransport, RetryPolicy, describe
from imagebot.registry.settings import RegistriesSettings, RegistryConfig
from imagebot.registry.tags import BadPage, TagCollector, newness, next_link, page_tags

log = logs.get_logger("imagebot.registry")

#: Docker Hub's API lives on another host than the name users write.
API_HOSTS = {"docker.io": "registry-1.docker.io"}

USER_AGENT = "imagebot (+https://github.com/imagebot)"

_REUSE_LISTINGS: ContextVar[bool] = ContextVar("reuse_listings", default=False)


@contextmanager
def reusing_listings() -> Iterator[None]:
    """Within the block (and the tasks it starts), a repository's last listing answers
    however old it is, unless ``expire`` was called for it since: a cycle triggered only by
    webhooks lists only what they reported."""
    token = _REUSE_LISTINGS.set(True)
    try:
        yield
    finally:
        _REUSE_LISTINGS.reset(token)


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
    transport: PoliteTransport
    base_url: str


class RegistryClient:
    """Async context manager; every public method raises only RegistryError (and subclasses)."""

    def __init__(
        self,
        *,
        settings: RegistriesSettings | None = None,
        credentials: CredentialProvider | None = None,
        cache: Cache | None = None,
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
        self.cache = cache if cache is not None else Cache(":memory:")
        self._clock: Clock = clock or utc_now
        self._sleep: Sleep = sleep or anyio.sleep
        self._transport = transport
        self.retry = retry or RetryPolicy()
        self._rng = rng or random.Random()
        self._registries: dict[str, _Registry] = {}
        # httpx event hooks on every registry's client: the daemon counts responses by
        # registry and status for /metrics without the client knowing about Prometheus.
        self._event_hooks = dict(event_hooks or {})
        self._expired: set[str] = set()
        """Repositories listed afresh next time, whatever ``scan_interval`` says."""

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def requests(self) -> int:
        """Requests sent (registry and token endpoints), retries included."""
        return sum(reg.transport.requests for reg in self._registries.values())

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
        reuse = _REUSE_LISTINGS.get()
        if (reuse or cfg.scan_interval > 0) and repo.name not in self._expired:
            listed = self.cache.listing(repo.name)
            if listed is not None:
                age = self._clock().timestamp() - listed[1]
                if reuse or 0 <= age < cfg.scan_interval:  # a clock set back lists again
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
        base_url = f"{'http' if cfg.insecure else 'https'}://{API_HOSTS.get(host, host)}"
        auth = RegistryAuth(host, base_url, credentials=self._credentials, clock=self._clock)
        # Here, not at the top: httpx imports httpcore only when a transport is made, so
        # `imagebot tags --help` and friends start without it.
        from imagebot.registry.transport import network_transport

        transport = PoliteTransport(
            self._transport or network_transport(cfg),
            registry=host,
            concurrency=cfg.concurrency,
            rate=cfg.rate,
            burst=cfg.burst,
            max_bytes=cfg.max_response_bytes,
            deadline=cfg.deadline,
            retry=self.retry,
            clock=self._clock,
            sleep=self._sleep,
            rng=self._rng,
            # httpx event hooks see only the last try; the daemon counts every answer.
            on_response=self._event_hooks.get("response", []),
        )
        scope = CredentialScope(base_url, realm=lambda: auth.realm)
        http = httpx.AsyncClient(
            transport=transport,
            auth=auth,
            timeout=httpx.Timeout(cfg.timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            event_hooks={"request": [scope, *self._event_hooks.get("request", [])]},
        )
        reg = _Registry(config=cfg, http=http, transport=transport, base_url=base_url)
        self._registries[host] = reg
        return reg

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
            tags = page_tags(response.content, response.headers.get("content-type"))
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
        """Send (auth and politeness are the client's) and map the status: a response with
        status in ``ok``, or a RegistryError naming the repository and ``what``."""
        names = self._names(repo)
        try:
            response = await reg.http.request(method, url, headers=headers)
        except httpx.InvalidURL as exc:
            raise RegistryError(f"{what}: invalid URL {url!r}: {exc}", **names) from None
        except httpx.HTTPError as exc:
            raise RegistryError(f"{what}: {describe(exc)}", **names) from None
        except RateLimited as exc:  # from the transport: name the request
            raise RateLimited(
                f"{what}: {exc.detail}", retry_after=exc.retry_after, **names
            ) from None
        except RegistryError as exc:  # from the auth flow
            raise type(exc)(f"{what}: {exc.detail}", **names) from None
        status = response.status_code
        if status in ok:
            return response
        detail = mf.error_text(response.content, response.headers.get("content-type"))
        if status == 404:
            raise NotFound(f"{what}: not found (404){detail}", **names)
        if status == 403:
            raise AuthError(f"{what}: access denied (403){detail}", **names)
        raise RegistryError(f"{what}: HTTP {status}{detail}", **names)

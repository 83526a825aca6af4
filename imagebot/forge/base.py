"""What imagebot needs from a forge, and the one HTTP seam every forge module sends through.

Each forge module (github, gitlab, gitea) implements :class:`Forge` on top of
:class:`ForgeHTTP`, which maps every failure once — a status, a rate limit, a connection
error — to :class:`~imagebot.errors.ForgeError` naming the forge, the project and the
action. The token travels only in a request header; it is never part of a URL, a message
or a log event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx

from imagebot import logs
from imagebot.clock import Clock, Sleep
from imagebot.errors import ForgeError

log = logs.get_logger("imagebot.forge")

PullState = Literal["open", "closed", "merged"]
StatusState = Literal["success", "pending", "failure", "error"]


@dataclass(frozen=True)
class PullRequest:
    """A pull request (GitLab: merge request) as imagebot sees it on any forge."""

    number: int  # GitHub/Gitea number, GitLab iid
    url: str  # the page a human opens
    title: str  # without a forge's draft prefix
    body: str
    state: PullState
    head: str
    base: str
    draft: bool = False
    node_id: str = ""  # GitHub's GraphQL id (auto-merge has no REST endpoint)


@dataclass(frozen=True)
class CommitStatus:
    """One check or status reported on a commit, normalised across forges."""

    context: str
    state: StatusState
    url: str | None = None
    description: str | None = None


class Forge(Protocol):
    """The pull-request operations imagebot uses; one implementation per forge type."""

    kind: str  # "github" | "gitlab" | "gitea"
    project: str

    async def find_open(self, *, head: str, base: str) -> PullRequest | None:
        """The open pull request from ``head`` into ``base``, if there is one."""
        ...

    async def closed(self, *, head: str, base: str) -> list[PullRequest]:
        """Every closed or merged pull request from ``head`` into ``base``."""
        ...

    async def open(
        self, *, head: str, base: str, title: str, body: str, draft: bool
    ) -> PullRequest: ...

    async def update(self, pr: PullRequest, *, title: str, body: str) -> PullRequest: ...

    async def comments(self, pr: PullRequest) -> list[str]:
        """The bodies of the pull request's comments, oldest first."""
        ...

    async def comment(self, pr: PullRequest, body: str) -> None: ...

    async def close(self, pr: PullRequest, *, body: str | None = None) -> None:
        """Close without merging; with ``body``, replace the description in the same call."""
        ...

    async def add_labels(self, pr: PullRequest, labels: tuple[str, ...]) -> None: ...

    async def request_reviewers(self, pr: PullRequest, reviewers: tuple[str, ...]) -> None: ...

    async def enable_automerge(self, pr: PullRequest) -> None: ...

    async def commit_statuses(self, sha: str) -> list[CommitStatus]:
        """The statuses (checks) reported on commit ``sha``."""
        ...


_STATUS_MEANING = {
    401: "the token was rejected (401)",
    403: "forbidden: the token lacks a permission (403)",
    404: "not found: the project, pull request or branch does not exist, or the token"
    " cannot see it (404)",
    409: "conflict (409)",
    422: "rejected as invalid (422)",
}

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass
class ForgeHTTP:
    """Sends a forge's requests: auth header, JSON, pagination, rate limits, error mapping."""

    client: httpx.AsyncClient
    forge: str
    base_url: str
    project: str
    headers: Mapping[str, str]  # auth and API version; never logged
    sleep: Sleep
    clock: Clock
    #: the longest rate-limit wait honoured in-cycle; longer ones fail this environment
    #: for this cycle (the next cycle tries again) instead of stalling every other one.
    max_wait: float = 60.0
    #: how many times one request is retried after a rate limit
    retries: int = 3

    def __repr__(self) -> str:  # never show the headers: they hold the token
        return f"ForgeHTTP({self.forge}, {self.base_url}, {self.project})"

    async def call(
        self,
        method: str,
        path: str,
        *,
        action: str,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> httpx.Response:
        """Send one request; a 2xx response is returned, anything else raises ForgeError."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        for attempt in range(self.retries + 1):
            try:
                response = await self.client.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={"Accept": "application/json", **self.headers},
                )
            except httpx.HTTPError as exc:
                # Described, never quoted: h11's text of a refused header holds the header.
                raise self.error(
                    f"cannot reach {self.base_url}: {_failure(exc)}", action=action
                ) from None
            if response.is_success:
                return response
            wait = self._rate_limit_wait(response)
            if wait is None:
                raise self.error(_describe(response), action=action, status=response.status_code)
            if wait > self.max_wait or attempt == self.retries:
                raise self.error(
                    f"rate limited ({response.status_code}): retry after {wait:.0f}s"
                    f" ({_detail(response) or 'no detail'})",
                    action=action,
                    status=response.status_code,
                )
            log.warning(
                "forge_rate_limited", forge=self.forge, project=self.project, action=action,
                wait=wait, attempt=attempt + 1,
            )  # fmt: skip
            await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    async def json(self, method: str, path: str, *, action: str, json: Any = None) -> Any:
        response = await self.call(method, path, action=action, json=json)
        return self._decode(response, action=action) if response.content else None

    def _decode(self, response: httpx.Response, *, action: str) -> Any:
        try:
            return response.json()
        except ValueError:  # a proxy's HTML error page with a 200, say
            kind = response.headers.get("content-type", "no content type")
            raise self.error(f"the answer is not JSON ({kind})", action=action) from None

    async def pages(
        self,
        path: str,
        *,
        action: str,
        params: Mapping[str, str | int] | None = None,
        within: str | None = None,
    ) -> list[Any]:
        """Every item of a paginated list: follows ``Link: rel="next"`` (GitHub, Gitea,
        GitLab), else GitLab's ``X-Next-Page`` header. ``within`` names the list when each
        page is an object holding it (GitHub's ``statuses`` and ``check_runs``)."""
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, str | int] | None = params
        for _ in range(1000):  # a bound, not a budget: 1000 pages is far past any real list
            if url is None:
                break
            response = await self.call("GET", url, action=action, params=query)
            page = self._decode(response, action=action)
            if within is not None and isinstance(page, dict):
                page = page.get(within)
            if not isinstance(page, list):
                raise self.error(f"expected a JSON list, got {type(page).__name__}", action=action)
            items.extend(page)
            url, query = self._next_page(response, url, query, action=action)
        return items

    def error(self, message: str, *, action: str, **more: Any) -> ForgeError:
        return ForgeError(message, forge=self.forge, project=self.project, action=action, **more)

    def _next_page(
        self,
        response: httpx.Response,
        url: str,
        query: Mapping[str, str | int] | None,
        *,
        action: str,
    ) -> tuple[str | None, Mapping[str, str | int] | None]:
        match = _LINK_NEXT.search(response.headers.get("link", ""))
        if match:
            # The token travels with the request: follow only links to the forge itself.
            link, forge = response.url.join(match.group(1)), httpx.URL(self.base_url)
            if (link.scheme, link.host, link.port) != (forge.scheme, forge.host, forge.port):
                raise self.error(
                    f"the next page is on another server ({link.scheme}://{link.netloc.decode()});"
                    " imagebot sends the token only to the forge's own URL",
                    action=action,
                )
            return str(link), None  # the link carries the whole query
        next_page = response.headers.get("x-next-page", "").strip()
        if next_page:
            return url, {**(query or {}), "page": int(next_page)}
        return None, None

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds to wait before retrying, when the response is a rate limit; else None.

        GitHub: secondary limits are 403/429 with ``retry-after``; primary limits are 403/429
        with ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (epoch seconds). GitLab:
        429 with ``RateLimit-Reset`` (epoch seconds) and usually ``Retry-After``. Gitea: 429.
        """
        status = response.status_code
        if status not in (403, 429):
            return None
        headers = response.headers
        retry_after = headers.get("retry-after")
        if retry_after:
            return _seconds_until(retry_after, self.clock())
        for name in ("ratelimit-reset", "x-ratelimit-reset"):
            reset = headers.get(name)
            exhausted = name == "ratelimit-reset" or headers.get("x-ratelimit-remaining") == "0"
            if reset and reset.strip().isdigit() and exhausted:
                return max(0.0, int(reset) - self.clock().timestamp())
        # GitHub: a secondary limit without retry-after means "wait at least a minute".
        if status == 429 or "secondary rate limit" in response.text.lower():
            return 60.0
        return None


def statuses(
    items: list[Any], *, context: str, state: str, states: Mapping[str, StatusState]
) -> list[CommitStatus]:
    """A forge's list of commit statuses: ``context`` and ``state`` name its fields, ``states``
    maps its state words (any other word is pending)."""
    return [
        CommitStatus(
            context=s.get(context, ""),
            state=states.get(s.get(state, ""), "pending"),
            url=s.get("target_url"),
            description=s.get("description"),
        )
        for s in items
    ]


def _failure(exc: httpx.HTTPError) -> str:
    """What went wrong, in words that cannot hold a header, a URL's credentials or a token."""
    invalid = "the request cannot be sent (an invalid header: check the token for stray characters)"
    kinds: list[tuple[type[httpx.HTTPError], str]] = [
        (httpx.TimeoutException, "no answer in time"),
        (httpx.ConnectError, "cannot connect"),
        (httpx.LocalProtocolError, invalid),
        (httpx.RemoteProtocolError, "the server broke the HTTP protocol"),
        (httpx.NetworkError, "the connection failed"),
    ]
    return next((words for kind, words in kinds if isinstance(exc, kind)), type(exc).__name__)


def _seconds_until(retry_after: str, now: datetime) -> float:
    value = retry_after.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 60.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _describe(response: httpx.Response) -> str:
    meaning = _STATUS_MEANING.get(response.status_code, f"HTTP {response.status_code}")
    detail = _detail(response)
    return f"{meaning}: {detail}" if detail else meaning


def _detail(response: httpx.Response) -> str:
    """The forge's own explanation from a documented error body.

    GitHub: ``{"message", "errors": [{"resource", "field", "code", "message"}]}``;
    GitLab: ``{"message": str | [str] | {field: [str]}}`` or ``{"error": str}``;
    Gitea: ``{"message", "url"}``.
    """
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    message = body.get("message", body.get("error"))
    if isinstance(message, str):
        parts.append(message)
    elif isinstance(message, list):
        parts.extend(str(m) for m in message)
    elif isinstance(message, dict):
        parts.extend(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in message.items())  # fmt: skip
    for err in body.get("errors", []) if isinstance(body.get("errors"), list) else []:
        if isinstance(err, dict):
            text = err.get("message") or " ".join(
                str(err[k]) for k in ("resource", "field", "code") if err.get(k)
            )
            parts.append(str(text))
        else:
            parts.append(str(err))
    return "; ".join(p for p in parts if p)[:500]

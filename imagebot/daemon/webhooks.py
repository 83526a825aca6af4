"""Registry webhooks: who may call, and which repository (and tag) each payload says was pushed.

Every sender is authenticated as it supports — a shared bearer header, an HMAC of the body
(optionally of a timestamp and the body), or (for senders that can sign nothing, and only
when a URL token is configured) a token in the URL — always compared in constant time.
Parsing is pure: bytes in, :class:`Push` values out; only pushes of a *tag* count, so
imagebot's own pulls and blob uploads never trigger anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagebot.core.reference import normalize_repository, parse
from imagebot.errors import InvalidReference

MAX_BODY = 1024 * 1024
"""Largest body read; anything longer is answered 413 without being parsed."""

REPLAY_WINDOW = 300.0
"""Seconds a signed timestamp stays valid, and a signature or event id is remembered."""
MAX_REMEMBERED = 10_000
"""Most signatures and event ids remembered; the oldest are forgotten first."""


@dataclass(frozen=True)
class Push:
    """A tag pushed to a repository (normalised, e.g. ``ghcr.io/acme/app``)."""

    repository: str
    tag: str
    #: the sender's event id, when it gives one (Distribution does); not part of the push
    event: str = field(default="", compare=False)


@dataclass(frozen=True)
class Request:
    """What a sender's check and parser see: lower-case header names, query, raw body."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


class BadPayload(ValueError):
    """The body is not the sender's documented JSON shape."""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(req: Request, secret: str) -> bool:
    """``Authorization: Bearer <secret>`` (Distribution's notification endpoint headers)."""
    return _same(req.headers.get("authorization", ""), f"Bearer {secret}")


def hmac_signature(header: str, *, stamp: str = "") -> Callable[[Request, str], bool]:
    """``<header>: sha256=<hex HMAC-SHA256 of the body keyed with the secret>``; when the
    sender gives the ``stamp`` header, the HMAC is of ``<timestamp>.<body>``."""

    def check(req: Request, secret: str) -> bool:
        given = req.headers.get(stamp, "") if stamp else ""
        material = f"{given}.".encode() + req.body if given else req.body
        digest = hmac.new(secret.encode(), material, hashlib.sha256).hexdigest()
        return _same(req.headers.get(header, ""), f"sha256={digest}")

    return check


def url_token(req: Request, secret: str) -> bool:
    """``?token=<secret>`` — for Docker Hub and Quay, whose webhooks carry no signature."""
    return _same(req.query.get("token", ""), secret)


def gitlab_token(req: Request, secret: str) -> bool:
    """``X-Gitlab-Token: <secret>`` (GitLab webhooks) or a bearer header (its registry's
    notification endpoint)."""
    return _same(req.headers.get("x-gitlab-token", ""), secret) or bearer(req, secret)


def harbor_auth(req: Request, secret: str) -> bool:
    """Harbor sends the policy's "Auth Header" value verbatim as ``Authorization``."""
    given = req.headers.get("authorization", "")
    return _same(given, secret) or bearer(req, secret)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise BadPayload("body is nested too deeply") from None


def _field(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _repository(name: str) -> str:
    try:
        return normalize_repository(name)
    except InvalidReference as exc:
        raise BadPayload(f"repository {name!r}: {exc}") from None


def distribution(req: Request) -> list[Push]:
    """CNCF Distribution notifications: an envelope of events; pushes of tagged manifests.

    The registry's host is taken from each event's target URL (what the pushing client
    called the registry), unless ``?registry=HOST`` names it as policies spell it.
    """
    doc = _json(req.body)
    events = _field(doc, "events")
    if not isinstance(events, list):
        raise BadPayload("expected {'events': [...]}")
    pushes = []
    for event in events:
        tag = _field(event, "target", "tag")
        path = _field(event, "target", "repository")
        if _field(event, "action") != "push" or not tag or not isinstance(path, str):
            continue
        host = req.query.get("registry") or (
            urllib.parse.urlsplit(str(_field(event, "target", "url") or "")).netloc
            or str(_field(event, "request", "host") or "")
        )
        repository = _repository(f"{host}/{path}" if host else path)
        pushes.append(Push(repository, str(tag), str(_field(event, "id") or "")))
    return pushes


def docker_hub(req: Request) -> list[Push]:
    doc = _json(req.body)
    name = _field(doc, "repository", "repo_name")
    tag = _field(doc, "push_data", "tag")
    if not isinstance(name, str):
        raise BadPayload("expected repository.repo_name")
    return [Push(_repository(name), str(tag))] if tag else []


def github(req: Request) -> list[Push]:
    """GitHub ``package`` (and legacy ``registry_package``) events for GHCR containers."""
    event = req.headers.get("x-github-event", "")
    if event not in ("package", "registry_package"):
        return []  # ping and every other event: authenticated, nothing to do
    doc = _json(req.body)
    pkg = _field(doc, event)
    if _field(doc, "action") not in ("published", "updated") or not isinstance(pkg, dict):
        return []
    if str(pkg.get("package_type", "")).lower() != "container":
        return []
    owner = _field(pkg, "owner", "login") or _field(pkg, "namespace")
    name = pkg.get("name")
    tag = _field(pkg, "package_version", "container_metadata", "tag", "name")
    if not isinstance(owner, str) or not isinstance(name, str):
        raise BadPayload("expected package.owner.login and package.name")
    return [Push(_repository(f"ghcr.io/{owner.lower()}/{name.lower()}"), str(tag))] if tag else []


def harbor(req: Request) -> list[Push]:
    doc = _json(req.body)
    if _field(doc, "type") not in ("PUSH_ARTIFACT", "pushImage"):
        return []
    resources = _field(doc, "event_data", "resources")
    if not isinstance(resources, list):
        raise BadPayload("expected event_data.resources")
    pushes = []
    for res in resources:
        url, tag = _field(res, "resource_url"), _field(res, "tag")
        if not isinstance(url, str) or not tag:
            continue
        try:
            ref = parse(url)
        except InvalidReference as exc:
            raise BadPayload(f"resource_url {url!r}: {exc}") from None
        pushes.append(Push(ref.repository, str(tag)))
    return pushes


def quay(req: Request) -> list[Push]:
    """Quay repository notifications ("Push to Repository")."""
    doc = _json(req.body)
    url, tags = _field(doc, "docker_url"), _field(doc, "updated_tags")
    if not isinstance(url, str) or not isinstance(tags, list):
        raise BadPayload("expected docker_url and updated_tags")
    repository = _repository(url)
    return [Push(repository, str(t)) for t in tags if t]


def generic(req: Request) -> list[Push]:
    """``{"repository": "ghcr.io/acme/app", "tag": "1.2.3"}`` from any CI job."""
    doc = _json(req.body)
    name, tag = _field(doc, "repository"), _field(doc, "tag")
    if not isinstance(name, str) or not isinstance(tag, str) or not tag:
        raise BadPayload('expected {"repository": "...", "tag": "..."}')
    return [Push(_repository(name), tag)]


class Seen:
    """Keys (signatures, event ids) seen in the last ``window`` seconds, at most ``limit`` of
    them: a replay within the window is recognised, and memory stays bounded."""

    def __init__(self, window: float = REPLAY_WINDOW, limit: int = MAX_REMEMBERED) -> None:
        self.window, self.limit = window, limit
        self._at: dict[str, float] = {}  # insertion order is time order

    def first(self, key: str, now: float) -> bool:
        """True the first time ``key`` is offered within the window; remembers it."""
        at = self._at
        while at and (len(at) >= self.limit or next(iter(at.values())) < now - self.window):
            del at[next(iter(at))]
        if key in at:
            return False
        at[key] = now
        return True


def git_push(req: Request) -> bool:
    """A forge's push event (GitHub and Gitea send ``X-GitHub-Event: push``, GitLab
    ``X-Gitlab-Event: Push Hook``): policies from git may have changed."""
    h = req.headers
    return h.get("x-github-event") == "push" or h.get("x-gitlab-event") == "Push Hook"


@dataclass(frozen=True)
class Sender:
    authenticate: Callable[[Request, str], bool]
    pushes: Callable[[Request], list[Push]]
    #: an HMAC of the body: authenticated only once the body is read (every other sender is
    #: authenticated on its headers or URL before a byte of the body is)
    signed: bool = False
    #: the secret travels in the URL: only with a URL token configured, never the main secret
    in_url: bool = False


#: ``POST /webhooks/<name>``: each sender with its authentication and payload parser.
SENDERS: dict[str, Sender] = {
    "distribution": Sender(bearer, distribution),
    "dockerhub": Sender(url_token, docker_hub, in_url=True),
    "github": Sender(hmac_signature("x-hub-signature-256"), github, signed=True),
    "harbor": Sender(harbor_auth, harbor),
    "quay": Sender(url_token, quay, in_url=True),
    "gitlab": Sender(gitlab_token, distribution),
    "generic": Sender(
        hmac_signature("x-imagebot-signature", stamp="x-imagebot-timestamp"), generic, signed=True
    ),
}

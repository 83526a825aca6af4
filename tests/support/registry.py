"""A real CNCF Distribution registry (``/usr/bin/docker-registry``) on a free loopback port.

``run_registry`` starts one with its own temp storage (anonymous, htpasswd Basic auth, or
token auth against a :class:`~tests.support.tokenserver.TokenServer`), and ``push_image``
pushes a tiny but real image through the Distribution API (blob uploads + manifest PUT).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bcrypt
import httpx

REGISTRY_BINARY = "/usr/bin/docker-registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True)
class Htpasswd:
    """htpasswd Basic auth: ``users`` maps user name to password (stored bcrypt-hashed)."""

    users: dict[str, str]
    realm: str = "basic-realm"


@dataclass(frozen=True)
class TokenAuthConfig:
    """The registry's ``auth: token`` section: it trusts JWTs signed by ``rootcertbundle``."""

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass(frozen=True)
class Tls:
    """Serve HTTPS with ``cert``/``key``; with ``client_ca``, demand a client certificate."""

    cert: Path
    key: Path
    client_ca: Path | None = None


@dataclass(frozen=True)
class Notify:
    """A notification endpoint: the registry POSTs event envelopes to ``url`` with ``headers``."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """More endpoint settings, as written in a registry's config.yml (they win)."""


@dataclass
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, ``url`` is ``http://127.0.0.1:PORT``."""

    host: str
    url: str
    storage: Path
    log: Path = field(repr=False)


#: a header every test registry sends with its own work directory's name
IDENTITY = "X-Test-Registry"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(
    port: int,
    storage: Path,
    workdir: Path,
    auth: Htpasswd | TokenAuthConfig | None,
    tls: Tls | None = None,
    notifications: Sequence[Notify] = (),
) -> str:
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}, "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {
            "addr": f"127.0.0.1:{port}",
            # IDENTITY tells this registry's answers from another process's on a reused port.
            "headers": {"X-Content-Type-Options": ["nosniff"], IDENTITY: [workdir.name]},
        },
    }
    if tls is not None:
        cfg["http"]["tls"] = {"certificate": str(tls.cert), "key": str(tls.key)}
        if tls.client_ca is not None:
            cfg["http"]["tls"]["clientcas"] = [str(tls.client_ca)]
    if isinstance(auth, Htpasswd):
        path = workdir / "htpasswd"
        path.write_text(
            "".join(
                f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
                for user, pw in auth.users.items()
            )
        )
        cfg["auth"] = {"htpasswd": {"realm": auth.realm, "path": str(path)}}
    elif isinstance(auth, TokenAuthConfig):
        cfg["auth"] = {
            "token": {
                "realm": auth.realm,
                "service": auth.service,
                "issuer": auth.issuer,
                "rootcertbundle": str(auth.rootcertbundle),
            }
        }
    if notifications:
        cfg["notifications"] = {
            "endpoints": [
                {
                    "name": f"endpoint-{i}",
                    "url": n.url,
                    "headers": {k: [v] for k, v in n.headers.items()},
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "200ms",
                    # Blob uploads are not news; manifests pushed and pulled are (imagebot
                    # ignores the pulls itself, which is what tests check).
                    "ignoredmediatypes": ["application/octet-stream"],
                    **n.extra,
                }
                for i, n in enumerate(notifications)
            ]
        }
    # JSON is YAML; the registry reads it as its config.yml.
    return json.dumps(cfg, indent=2)


@contextmanager
def run_registry(
    tmp_path: Path,
    *,
    auth: Htpasswd | TokenAuthConfig | None = None,
    storage: Path | None = None,
    port: int | None = None,
    tls: Tls | None = None,
    notifications: Sequence[Notify] = (),
) -> Iterator[Registry]:
    """Start ``docker-registry serve`` on a free loopback port; stop it on exit.

    ``storage`` lets a test restart a registry over the same content (or a benchmark
    serve storage it wrote directly); ``notifications`` are its webhook endpoints.
    """
    workdir = Path(tmp_path) / f"registry-{os.urandom(4).hex()}"
    workdir.mkdir(parents=True)
    storage = storage if storage is not None else workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    port = port if port is not None else free_port()
    config = workdir / "config.yml"
    config.write_text(_config(port, storage, workdir, auth, tls, notifications))
    log = workdir / "registry.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"},
        )
    scheme = "https" if tls else "http"
    registry = Registry(
        host=f"127.0.0.1:{port}", url=f"{scheme}://127.0.0.1:{port}", storage=storage, log=log
    )
    try:
        _wait_ready(registry, proc, tls)
        yield registry
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(registry: Registry, proc: subprocess.Popen[bytes], tls: Tls | None) -> None:
    proc_name = registry.log.parent.name  # the work directory, sent as the IDENTITY header
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {registry.log.read_text()}")
        if tls is not None:
            # Any TLS answer (even a refused handshake without client cert) means it is up.
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", int(registry.host.rsplit(":", 1)[1]))) == 0:
                    return
            time.sleep(0.02)
            continue
        try:
            r = httpx.get(f"{registry.url}/v2/", timeout=1)
            # Another test run's registry may hold the port free_port() chose (it was free
            # when asked): only this registry's own answer means it is up.
            if r.status_code in (200, 401) and r.headers.get(IDENTITY) == proc_name:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"docker-registry did not answer on {registry.url}")


class ChallengeAuth(httpx.Auth):
    """Answers a registry's ``WWW-Authenticate`` challenge (Basic or Bearer) for pushes."""

    requires_response_body = True

    def __init__(self, username: str, password: str) -> None:
        self._basic = httpx.BasicAuth(username, password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("www-authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            yield next(self._basic.auth_flow(request))
            return
        fields = dict(_parse_params(params))
        query = {"service": fields.get("service", "")}
        if "scope" in fields:
            query["scope"] = fields["scope"]
        token_request = httpx.Request("GET", fields["realm"], params=query)
        token_request = next(self._basic.auth_flow(token_request))
        token_response = yield token_request
        body = token_response.json()
        request.headers["Authorization"] = f"Bearer {body.get('token') or body['access_token']}"
        yield request


def _parse_params(text: str) -> Iterator[tuple[str, str]]:
    for part in _split_commas(text):
        key, _, value = part.partition("=")
        yield key.strip(), value.strip().strip('"')


def _split_commas(text: str) -> Iterator[str]:
    buf, quoted = "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            yield buf
            buf = ""
        else:
            buf += ch
    if buf.strip():
        yield buf


def _layer(content: bytes) -> tuple[bytes, str]:
    """A gzipped tar with one file; returns (compressed bytes, diff_id of the tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("imagebot-test")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    compressed = gzip.compress(tar_bytes, mtime=0)
    return compressed, _digest(tar_bytes)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


class _Pusher:
    def __init__(self, registry: Registry, repository: str, auth: httpx.Auth | None) -> None:
        self.base = f"{registry.url}/v2/{repository}"
        self.client = httpx.Client(auth=auth, timeout=30)

    def blob(self, data: bytes) -> str:
        # Distribution 2.8 has no single-POST upload: POST opens a session, PUT closes it.
        digest = _digest(data)
        start = self.client.post(f"{self.base}/blobs/uploads/")
        start.raise_for_status()
        location = urllib.parse.urljoin(self.base + "/", start.headers["location"])
        sep = "&" if "?" in location else "?"
        put = self.client.put(
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        put.raise_for_status()
        return digest

    def manifest(self, reference: str, body: bytes, media_type: str) -> str:
        r = self.client.put(
            f"{self.base}/manifests/{reference}",
            content=body,
            headers={"Content-Type": media_type},
        )
        r.raise_for_status()
        return r.headers.get("docker-content-digest") or _digest(body)


def _platform(spec: str) -> dict[str, str]:
    parts = spec.split("/")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


def push_image(
    registry: Registry,
    repository: str,
    tag: str,
    *,
    created: datetime | None = None,
    platforms: Sequence[str] | None = None,
    annotations: dict[str, str] | None = None,
    auth: httpx.Auth | None = None,
) -> str:
    """Push a tiny real image as ``repository:tag``; return its manifest (or index) digest.

    Content differs per (repository, tag), so every tag has its own digest. With
    ``platforms`` (``"linux/amd64"``, ``"linux/arm64/v8"``) an OCI index is pushed and
    its digest returned. ``annotations`` go on the manifest (and on the index).
    """
    pusher = _Pusher(registry, repository, auth)
    created_text = (created or datetime(2024, 1, 1, tzinfo=UTC)).astimezone(UTC)
    try:
        descriptors = []
        for plat in platforms or ["linux/amd64"]:
            compressed, diff_id = _layer(f"{repository}:{tag}:{plat}".encode())
            layer_digest = pusher.blob(compressed)
            config = _canonical(
                {
                    **_platform(plat),
                    "created": created_text.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                }
            )
            config_digest = pusher.blob(config)
            manifest: dict[str, Any] = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(compressed)}
                ],
            }
            if annotations:
                manifest["annotations"] = dict(annotations)
            body = _canonical(manifest)
            if platforms is None:
                return pusher.manifest(tag, body, OCI_MANIFEST)
            digest = pusher.manifest(_digest(body), body, OCI_MANIFEST)
            descriptors.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(body),
                    "platform": _platform(plat),
                }
            )
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": descriptors,
        }
        if annotations:
            index["annotations"] = dict(annotations)
        return pusher.manifest(tag, _canonical(index), OCI_INDEX)
    finally:
        pusher.client.close()

"""A Docker token server (distribution's "token authentication specification") on loopback.

It issues RS256 JWTs signed by a test certificate it generates; the registry's ``auth:
token`` section trusts that certificate (``rootcertbundle``) and the JWT carries it in
its ``x5c`` header, so the real registry verifies every token as in production.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.httpserver import serving
from tests.support.registry import Registry, TokenAuthConfig, run_registry

SERVICE = "imagebot-test-registry"
ISSUER = "imagebot-test-issuer"


@dataclass
class TokenRequest:
    """One request the token server answered."""

    username: str | None
    scopes: list[str]
    service: str
    grant: str = "basic"


@dataclass
class TokenServer:
    """Issues tokens for ``users`` (anonymous pull too if ``allow_anonymous``).

    ``expires_in`` is what the server tells clients; the JWT's own ``exp`` is
    ``jwt_lifetime`` seconds of real time so the registry (which reads the wall clock)
    keeps accepting a token whose advertised lifetime a test's fake clock has passed.
    Repositories in ``deny`` get a token without access, so the registry answers 401.
    """

    users: dict[str, str]
    cert_path: Path
    key: rsa.RSAPrivateKey = field(repr=False)
    cert_der: bytes = field(repr=False)
    expires_in: int = 300
    jwt_lifetime: int = 600
    allow_anonymous: bool = False
    deny: set[str] = field(default_factory=set)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    """OAuth2 refresh tokens ("identity tokens") accepted by the POST grant: token -> user."""
    requests: list[TokenRequest] = field(default_factory=list)
    url: str = ""

    @property
    def realm(self) -> str:
        return f"{self.url}/token"

    def issue(self, username: str | None, scopes: list[str]) -> dict[str, Any]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if name in self.deny:
                continue
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": username or "",
            "aud": SERVICE,
            "exp": now + self.jwt_lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        token = jwt.encode(
            claims,
            self.key,
            algorithm="RS256",
            headers={"x5c": [base64.b64encode(self.cert_der).decode()]},
        )
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": datetime.now(UTC).isoformat(),
        }


def _make_cert(workdir: Path) -> tuple[rsa.RSAPrivateKey, bytes, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagebot test token issuer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = workdir / "token-issuer.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), path


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
            username = None
            header = self.headers.get("Authorization", "")
            if header.lower().startswith("basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if server.users.get(user) != password:
                    self._reply(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                    return
                username = user
            elif not server.allow_anonymous:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                return
            server.requests.append(TokenRequest(username, scopes, query.get("service", [""])[0]))
            self._reply(200, server.issue(username, scopes))

        def do_POST(self) -> None:
            # The distribution token spec's OAuth2 endpoint: form-encoded POST with
            # grant_type, client_id (required), service, scope and the refresh token.
            length = int(self.headers.get("Content-Length", "0"))
            form = parse_qs(self.rfile.read(length).decode())
            first = {k: v[0] for k, v in form.items()}
            if first.get("grant_type") != "refresh_token" or not first.get("client_id"):
                self._reply(400, {"error": "invalid_request"})
                return
            username = server.refresh_tokens.get(first.get("refresh_token", ""))
            if username is None:
                self._reply(400, {"error": "invalid_grant"})
                return
            scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
            server.requests.append(
                TokenRequest(username, scopes, first.get("service", ""), grant="refresh_token")
            )
            self._reply(200, server.issue(username, scopes))

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def run_token_server(
    tmp_path: Path, *, users: dict[str, str], **options: Any
) -> Iterator[TokenServer]:
    workdir = Path(tmp_path) / f"token-{os.urandom(4).hex()}"
    workdir.mkdir(parents=True)
    key, der, cert_path = _make_cert(workdir)
    server = TokenServer(users=dict(users), cert_path=cert_path, key=key, cert_der=der, **options)
    with serving(_handler(server)) as httpd:
        server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield server


@contextmanager
def run_token_registry(
    tmp_path: Path, *, users: dict[str, str], **options: Any
) -> Iterator[tuple[Registry, TokenServer]]:
    """A real registry with ``auth: token`` and the token server it trusts."""
    with run_token_server(tmp_path, users=users, **options) as tokens:
        auth = TokenAuthConfig(
            realm=tokens.realm, service=SERVICE, issuer=ISSUER, rootcertbundle=tokens.cert_path
        )
        with run_registry(tmp_path, auth=auth) as registry:
            yield registry, tokens

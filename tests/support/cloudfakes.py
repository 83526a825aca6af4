"""Local HTTP servers speaking the documented cloud token protocols, for credential tests.

Each fake is a real HTTP server on 127.0.0.1 that checks requests the way the real service
does (signatures, required headers, grant parameters) and answers with the documented
status codes, JSON/XML shapes and error bodies. Only the protocol is reproduced; which
principals exist is whatever the test sets up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt

from tests.support.httpserver import nonblocking_accept


@dataclass
class Request:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, doc: Any, content_type: str = "application/json") -> Response:
        return cls(status, json.dumps(doc).encode(), {"Content-Type": content_type})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), {"Content-Type": content_type})


class FakeServer(ABC):
    """A threaded HTTP server on a free loopback port that records every request."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                fake.requests.append(request)
                response = fake.handle(request)
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        nonblocking_accept(self._server)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def netloc(self) -> str:
        return self.url.removeprefix("http://")

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request the way the real service would."""

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- AWS


@dataclass(frozen=True)
class AwsKey:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def verify_sigv4(request: Request, keys: dict[str, AwsKey], *, service: str) -> str | None:
    """Check an AWS Signature Version 4 ``Authorization`` header as AWS does.

    Returns None when valid, else the AWS error code (``MissingAuthenticationToken``,
    ``UnrecognizedClientException``, ``InvalidSignatureException``).
    """
    auth = request.header("authorization")
    if not auth or not auth.startswith("AWS4-HMAC-SHA256 "):
        return "MissingAuthenticationToken"
    fields = dict(
        part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key, date, region, scope_service, terminator = fields["Credential"].split("/")
    key = keys.get(access_key)
    if key is None:
        return "UnrecognizedClientException"
    if key.session_token is not None and request.header("x-amz-security-token") != (
        key.session_token
    ):
        return "UnrecognizedClientException"
    if scope_service != service or terminator != "aws4_request":
        return "InvalidSignatureException"
    signed_headers = fields["SignedHeaders"].split(";")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, vs in sorted(request.query.items())
        for v in sorted(vs)
    )
    canonical_headers = "".join(
        f"{name}:{' '.join((request.header(name) or '').split())}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [
            request.method,
            quote(request.path, safe="/-_.~"),
            canonical_query,
            canonical_headers,
            ";".join(signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )
    amz_date = request.header("x-amz-date") or ""
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signing_key = _sign(
        _sign(_sign(_sign(f"AWS4{key.secret_access_key}".encode(), date), region), service),
        "aws4_request",
    )
    expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"]):
        return "InvalidSignatureException"
    return None


def sigv4_region(request: Request) -> str | None:
    auth = request.header("authorization") or ""
    marker = "Credential="
    if marker not in auth:
        return None
    return auth.split(marker, 1)[1].split(",", 1)[0].split("/")[2]


_AWS_ERROR_MESSAGES = {
    "MissingAuthenticationToken": (403, "Missing Authentication Token"),
    "UnrecognizedClientException": (
        400,
        "The security token included in the request is invalid.",
    ),
    "InvalidSignatureException": (
        400,
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method.",
    ),
}


class FakeEcr(FakeServer):
    """ECR and ECR Public ``GetAuthorizationToken`` (AWS JSON 1.1, SigV4-signed)."""

    TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"
    PUBLIC_TARGET = "SpencerFrontendService.GetAuthorizationToken"

    def __init__(self, keys: list[AwsKey], *, lifetime: timedelta = timedelta(hours=12)) -> None:
        super().__init__()
        self.keys = {k.access_key_id: k for k in keys}
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.regions: list[str | None] = []

    def handle(self, request: Request) -> Response:
        target = request.header("x-amz-target")
        public = target == self.PUBLIC_TARGET
        if request.method != "POST" or target not in (self.TARGET, self.PUBLIC_TARGET):
            return self._error(400, "UnknownOperationException", "")
        if request.header("content-type") != "application/x-amz-json-1.1":
            return self._error(400, "SerializationException", "Unsupported content type")
        problem = verify_sigv4(request, self.keys, service="ecr-public" if public else "ecr")
        if problem is not None:
            status, message = _AWS_ERROR_MESSAGES[problem]
            return self._error(status, problem, message)
        self.regions.append(sigv4_region(request))
        password = f"ecr-password-{len(self.issued) + 1}"
        self.issued.append(password)
        expires_at = time.time() + self.lifetime.total_seconds()
        data = {
            "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
            "expiresAt": expires_at,
        }
        if public:
            return Response.json(200, {"authorizationData": data}, "application/x-amz-json-1.1")
        data["proxyEndpoint"] = "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        return Response.json(200, {"authorizationData": [data]}, "application/x-amz-json-1.1")

    @staticmethod
    def _error(status: int, code: str, message: str) -> Response:
        response = Response.json(
            status, {"__type": code, "message": message}, "application/x-amz-json-1.1"
        )
        response.headers["x-amzn-ErrorType"] = code
        return response


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeSts(FakeServer):
    """STS ``AssumeRoleWithWebIdentity`` (AWS query protocol, unsigned, XML answers)."""

    def __init__(self, *, web_identity_token: str, role_arn: str, issues: AwsKey) -> None:
        super().__init__()
        self.web_identity_token = web_identity_token
        self.role_arn = role_arn
        self.issues = issues

    def handle(self, request: Request) -> Response:
        form = request.form()
        if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != (
            "2011-06-15"
        ):
            return self._error(400, "InvalidAction", "Could not find operation")
        if form.get("WebIdentityToken") != self.web_identity_token:
            return self._error(400, "InvalidIdentityToken", "Couldn't retrieve verification key")
        if form.get("RoleArn") != self.role_arn:
            return self._error(
                403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            )
        expiration = _iso(datetime.now(UTC) + timedelta(hours=1))
        body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:imagebot:imagebot</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>{self.role_arn}/{form.get("RoleSessionName", "")}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{form.get("RoleSessionName", "")}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{self.issues.session_token}</SessionToken>
      <SecretAccessKey>{self.issues.secret_access_key}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{self.issues.access_key_id}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        return Response.text(200, body, "text/xml")

    @staticmethod
    def _error(status: int, code: str, message: str) -> Response:
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
            f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>0b1c2d3e</RequestId></ErrorResponse>"
        )
        return Response.text(status, body, "text/xml")


def _temporary_credentials_json(key: AwsKey) -> dict[str, str]:
    return {
        "AccessKeyId": key.access_key_id,
        "SecretAccessKey": key.secret_access_key,
        "Token": key.session_token or "",
        "Expiration": _iso(datetime.now(UTC) + timedelta(hours=6)),
    }


class FakeContainerCredentials(FakeServer):
    """The ECS / EKS Pod Identity container credentials endpoint (``Authorization`` token)."""

    def __init__(self, *, authorization: str, issues: AwsKey) -> None:
        super().__init__()
        self.authorization = authorization
        self.issues = issues

    def handle(self, request: Request) -> Response:
        if request.header("authorization") != self.authorization:
            return Response.json(401, {"Message": "Unauthorized"})
        return Response.json(
            200, {**_temporary_credentials_json(self.issues), "RoleArn": "arn:aws:iam::1:role/r"}
        )


class FakeImds(FakeServer):
    """EC2 instance metadata with IMDSv2 enforced: PUT a session token, then GET with it."""

    def __init__(self, *, role: str, issues: AwsKey) -> None:
        super().__init__()
        self.role = role
        self.issues = issues
        self.tokens: set[str] = set()

    def handle(self, request: Request) -> Response:
        if request.method == "PUT" and request.path == "/latest/api/token":
            if not request.header("x-aws-ec2-metadata-token-ttl-seconds"):
                return Response.text(400, "")
            token = f"imds-session-{len(self.tokens)}"
            self.tokens.add(token)
            return Response.text(200, token)
        if request.header("x-aws-ec2-metadata-token") not in self.tokens:
            return Response.text(401, "")
        prefix = "/latest/meta-data/iam/security-credentials/"
        if request.path == prefix:
            return Response.text(200, self.role)
        if request.path == prefix + self.role:
            doc = {
                "Code": "Success",
                "LastUpdated": _iso(datetime.now(UTC)),
                "Type": "AWS-HMAC",
                **_temporary_credentials_json(self.issues),
            }
            return Response.json(200, doc)
        return Response.text(404, "")


# ---------------------------------------------------------------- Google


class FakeGoogleOAuth(FakeServer):
    """Google's OAuth 2.0 token endpoint: the JWT bearer grant for service-account keys
    (RS256 assertion verified against the key's public half) and the refresh-token grant."""

    def __init__(self, *, public_key_pem: bytes, client_email: str, refresh_token: str) -> None:
        super().__init__()
        self.public_key_pem = public_key_pem
        self.client_email = client_email
        self.refresh_token = refresh_token
        self.issued: list[str] = []

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/token":
            return Response.json(404, {"error": "not_found"})
        form = request.form()
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form.get("assertion", ""),
                    self.public_key_pem,
                    algorithms=["RS256"],
                    audience=self.token_uri,
                    options={"require": ["iss", "aud", "iat", "exp", "scope"]},
                )
            except jwt.InvalidSignatureError:
                return self._error("invalid_grant", "Invalid JWT Signature.")
            except jwt.PyJWTError as exc:
                return self._error("invalid_grant", f"Invalid JWT: {exc}")
            if claims["iss"] != self.client_email:
                return self._error("invalid_grant", "Invalid grant: account not found")
            if claims["exp"] - claims["iat"] > 3600:
                return self._error("invalid_grant", "Invalid JWT: exp too far in the future")
        elif grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return self._error("invalid_grant", "Bad Request")
        else:
            return self._error("unsupported_grant_type", "Invalid grant_type: " + str(grant))
        token = f"ya29.access-token-{len(self.issued) + 1}"
        self.issued.append(token)
        return Response.json(
            200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        )

    @staticmethod
    def _error(error: str, description: str) -> Response:
        return Response.json(400, {"error": error, "error_description": description})


class FakeGceMetadata(FakeServer):
    """The GCE/GKE metadata server's default service-account token."""

    PATH = "/computeMetadata/v1/instance/service-accounts/default/token"

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []

    def handle(self, request: Request) -> Response:
        if request.header("metadata-flavor") != "Google":
            return Response.text(403, "Missing Metadata-Flavor:Google header.", "text/html")
        if request.path != self.PATH:
            return Response.text(404, "Not Found", "text/html")
        token = f"ya29.metadata-token-{len(self.issued) + 1}"
        self.issued.append(token)
        response = Response.json(
            200, {"access_token": token, "expires_in": 3387, "token_type": "Bearer"}
        )
        response.headers["Metadata-Flavor"] = "Google"
        return response


# ---------------------------------------------------------------- Azure


class FakeEntraId(FakeServer):
    """Microsoft Entra ID's v2.0 token endpoint, client-credentials grant with a secret or
    a federated client assertion, answering AADSTS errors as Entra does."""

    def __init__(self, *, tenant: str, client_id: str, secret: str, federated_token: str) -> None:
        super().__init__()
        self.tenant, self.client_id = tenant, client_id
        self.secret, self.federated_token = secret, federated_token
        self.issued: list[str] = []

    def handle(self, request: Request) -> Response:
        if request.path != f"/{self.tenant}/oauth2/v2.0/token":
            return self._error(400, "invalid_request", "AADSTS90002: Tenant not found.")
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return self._error(400, "unsupported_grant_type", "AADSTS70003: unsupported grant")
        if form.get("client_id") != self.client_id:
            return self._error(400, "unauthorized_client", "AADSTS700016: Application not found")
        if not form.get("scope", "").endswith("/.default"):
            return self._error(400, "invalid_scope", "AADSTS1002012: invalid scope")
        if "client_secret" in form:
            if form["client_secret"] != self.secret:
                return self._error(
                    401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
                )
        elif form.get("client_assertion_type") == (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            if form.get("client_assertion") != self.federated_token:
                return self._error(
                    400, "invalid_client", "AADSTS700024: Client assertion is not valid."
                )
        else:
            return self._error(
                401, "invalid_client", "AADSTS7000218: client_assertion or client_secret required"
            )
        token = f"entra-access-{len(self.issued) + 1}"
        self.issued.append(token)
        return Response.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
        )

    @staticmethod
    def _error(status: int, error: str, description: str) -> Response:
        return Response.json(
            status,
            {
                "error": error,
                "error_description": description,
                "error_codes": [0],
                "timestamp": _iso(datetime.now(UTC)),
                "trace_id": "t",
                "correlation_id": "c",
            },
        )


class FakeAzureImds(FakeServer):
    """Azure IMDS managed-identity tokens (``Metadata: true``, ``expires_in`` as a string)."""

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[str] = []

    def handle(self, request: Request) -> Response:
        if request.header("metadata") != "true":
            return Response.json(
                400,
                {
                    "error": "invalid_request",
                    "error_description": "Required metadata header not specified",
                },
            )
        if request.path != "/metadata/identity/oauth2/token" or "resource" not in request.query:
            return Response.json(400, {"error": "invalid_request", "error_description": "bad"})
        token = f"imds-access-{len(self.issued) + 1}"
        self.issued.append(token)
        now = int(time.time())
        return Response.json(
            200,
            {
                "access_token": token,
                "expires_in": "86399",
                "expires_on": str(now + 86399),
                "resource": request.query["resource"][0],
                "token_type": "Bearer",
            },
        )


class FakeAcrExchange(FakeServer):
    """ACR's ``/oauth2/exchange``: an Entra token from the tenant for a refresh token (a JWT)."""

    def __init__(self, *, accepted_tokens: list[str], service: str, lifetime: timedelta) -> None:
        super().__init__()
        self.accepted_tokens = accepted_tokens  # shared with the Entra fake's issued list
        self.service = service
        self.lifetime = lifetime
        self.issued: list[str] = []

    def handle(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/oauth2/exchange":
            return Response.json(404, {"errors": [{"code": "NOT_FOUND", "message": "not found"}]})
        form = request.form()
        if form.get("grant_type") != "access_token":
            return self._unauthorized("grant type not supported")
        if form.get("service") != self.service:
            return self._unauthorized("service does not match")
        if form.get("access_token") not in self.accepted_tokens:
            return self._unauthorized("failed to validate the AAD access token")
        exp = int(time.time() + self.lifetime.total_seconds())
        refresh = jwt.encode(
            {
                "jti": str(len(self.issued) + 1),
                "sub": "sp",
                "exp": exp,
                "grant_type": "refresh_token",
                "aud": self.service,
                "tenant": form.get("tenant", ""),
            },
            "acr-signing-key-for-tests-only-32b",
            algorithm="HS256",
        )
        self.issued.append(refresh)
        return Response.json(200, {"refresh_token": refresh})

    @staticmethod
    def _unauthorized(message: str) -> Response:
        return Response.json(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]})

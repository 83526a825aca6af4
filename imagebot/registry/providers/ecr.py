"""AWS ECR: ``GetAuthorizationToken`` signed with credentials from the standard AWS chain.

The token decodes to ``AWS:<password>`` and is valid for 12 hours; the caching wrapper
renews it before ``expiresAt``. Private registries are ``<account>.dkr.ecr.<region>.
amazonaws.com`` (also ``dkr-ecr`` dual-stack ``.on.aws``, ``ecr-fips``, China's
``.amazonaws.com.cn`` and the isolated partitions); ``public.ecr.aws`` uses the ECR Public
API, which lives in us-east-1 only.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers.aws import InjectedEnvSession
from imagebot.registry.providers.env import Environment
from imagebot.registry.providers.spec import EcrSource

# amazon-ecr-credential-helper's host pattern, plus the dual-stack endpoints.
_PRIVATE_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr[.-]ecr(?P<fips>-fips)?\.(?P<region>[a-z0-9][a-z0-9-]*)\."
    r"(?:amazonaws\.com(?:\.cn)?|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk"
    r"|csp\.hci\.ic\.gov)$"
)
PUBLIC_HOST = "public.ecr.aws"
_PUBLIC_REGION = "us-east-1"

# A retry of a throttled or 5xx call is cheap; a long backoff would stall the scan cycle,
# and the caching wrapper keeps serving a still-valid token meanwhile.
_BOTO_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15
)


@dataclass(frozen=True, slots=True)
class EcrHost:
    """What an ECR registry host says about where to ask for its token."""

    account: str | None
    region: str | None
    fips: bool = False
    public: bool = False


def parse_ecr_host(registry: str) -> EcrHost | None:
    """Account, region and FIPS-ness of an ECR host; None when it is not one."""
    host = registry.lower()
    if host == PUBLIC_HOST:
        return EcrHost(account=None, region=_PUBLIC_REGION, public=True)
    match = _PRIVATE_HOST.match(host)
    if match is None:
        return None
    return EcrHost(account=match["account"], region=match["region"], fips=match["fips"] is not None)


class EcrProvider:
    """ECR authorization tokens for any registry this source is configured for."""

    def __init__(self, source: EcrSource, environment: Environment) -> None:
        self._source = source
        self._environment = environment
        self._session: InjectedEnvSession | None = None
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EcrProvider(region={self._source.region!r}, profile={self._source.profile!r})"

    async def get(self, registry: str, *, now: datetime) -> Credentials | None:
        host = parse_ecr_host(registry) or EcrHost(account=None, region=None)
        region = (
            self._source.region
            or host.region
            or self._environment.get("AWS_REGION")
            or self._environment.get("AWS_DEFAULT_REGION")
        )
        if region is None:
            raise AuthError(
                "ECR: the AWS region is not part of this host; set `region` on the source",
                registry=registry,
            )
        service = "ecr-public" if host.public else "ecr"
        return await anyio.to_thread.run_sync(
            self._fetch, registry, service, region, host.fips, abandon_on_cancel=True
        )

    def _client(self, service: str, region: str, fips: bool) -> Any:
        key = (service, region, fips)
        with self._lock:
            if key not in self._clients:
                if self._session is None:
                    self._session = InjectedEnvSession(
                        self._environment, profile=self._source.profile
                    )
                config = _BOTO_CONFIG.merge(Config(use_fips_endpoint=fips)) if fips else None
                self._clients[key] = self._session.create_client(
                    service,
                    region_name=region,
                    endpoint_url=self._source.endpoint_url,
                    config=config or _BOTO_CONFIG,
                )
            return self._clients[key]

    def _fetch(self, registry: str, service: str, region: str, fips: bool) -> Credentials:
        call = "ECR Public" if service == "ecr-public" else "ECR"
        call += " GetAuthorizationToken"
        try:
            response = self._client(service, region, fips).get_authorization_token()
        except NoCredentialsError as exc:
            raise AuthError(
                f"{call}: no AWS credentials found (environment, web identity, profile "
                "files, container endpoint, instance metadata)",
                registry=registry,
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            detail = f"{status} {error.get('Code', '')} {error.get('Message', '')}".strip()
            raise AuthError(
                f"{call} failed: {detail}",
                registry=registry,
            ) from exc
        except BotoCoreError as exc:
            raise AuthError(f"{call} failed: {exc}", registry=registry) from exc
        data = response.get("authorizationData")
        if isinstance(data, list):
            data = data[0] if data else None
        if not isinstance(data, dict) or "authorizationToken" not in data:
            raise AuthError(f"{call} returned no authorizationData", registry=registry)
        try:
            decoded = base64.b64decode(data["authorizationToken"]).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(
                f"{call} returned a token that is not base64", registry=registry
            ) from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise AuthError(f"{call} returned a token without user:password", registry=registry)
        expires = data.get("expiresAt")
        expires_at = expires.astimezone(UTC) if isinstance(expires, datetime) else None
        return Credentials(username=username, password=password, expires_at=expires_at)

"""Google Artifact Registry / GCR access tokens from key files and the metadata server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.spec import GarSource
from tests.support.cloudfakes import FakeGceMetadata, FakeGoogleOAuth

pytestmark = pytest.mark.anyio

REGISTRY = "europe-west1-docker.pkg.dev"
EMAIL = "imagebot@acme-prod.iam.gserviceaccount.com"


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def oauth(signing_key: rsa.RSAPrivateKey) -> Iterator[FakeGoogleOAuth]:
    public = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with FakeGoogleOAuth(
        public_key_pem=public, client_email=EMAIL, refresh_token="1//user-refresh"
    ) as fake:
        yield fake  # type: ignore[misc]


def _service_account_key(path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-prod",
                "private_key_id": "0123456789abcdef",
                "private_key": _pem(key),
                "client_email": EMAIL,
                "client_id": "1234567890",
                "token_uri": token_uri,
            }
        )
    )
    return path


async def _get(
    source: GarSource, env: dict[str, str], home: Path, now: datetime | None = None
) -> Credentials | None:
    provider = provider_for({REGISTRY: source}, env=env, home=home, docker_config=False)
    return await provider.get(REGISTRY, now=now or datetime.now(UTC))


async def test_service_account_key_jwt_grant(
    tmp_path: Path, oauth: FakeGoogleOAuth, signing_key: rsa.RSAPrivateKey
) -> None:
    """A service-account key signs an RS256 assertion for its token_uri; the token is the secret."""
    key_file = _service_account_key(tmp_path / "sa.json", signing_key, oauth.token_uri)
    now = datetime.now(UTC)
    creds = await _get(GarSource(type="gar", key_file=str(key_file)), {}, tmp_path, now)
    assert creds == Credentials(
        "oauth2accesstoken", "ya29.access-token-1", expires_at=now + timedelta(seconds=3599)
    )
    assertion = oauth.requests[0].form()["assertion"]
    assert jwt.get_unverified_header(assertion)["kid"] == "0123456789abcdef"
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"


async def test_key_signed_by_another_key_is_refused(tmp_path: Path, oauth: FakeGoogleOAuth) -> None:
    """Google's invalid_grant answer is reported with registry, exchange and description."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = _service_account_key(tmp_path / "sa.json", other, oauth.token_uri)
    with pytest.raises(AuthError) as caught:
        await _get(GarSource(type="gar", key_file=str(key_file)), {}, tmp_path)
    assert str(caught.value) == (
        f"{REGISTRY}: GCP service-account token exchange at {oauth.token_uri} failed: "
        "400 invalid_grant: Invalid JWT Signature."
    )


async def test_google_application_credentials_variable(
    tmp_path: Path, oauth: FakeGoogleOAuth, signing_key: rsa.RSAPrivateKey
) -> None:
    """Without key_file, $GOOGLE_APPLICATION_CREDENTIALS names the key, as in Google's ADC."""
    key_file = _service_account_key(tmp_path / "adc.json", signing_key, oauth.token_uri)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)}
    creds = await _get(GarSource(type="gar"), env, tmp_path)
    assert creds is not None and creds.password == "ya29.access-token-1"


async def test_gcloud_user_credentials(tmp_path: Path, oauth: FakeGoogleOAuth) -> None:
    """gcloud's application_default_credentials.json (authorized_user) uses the refresh grant."""
    adc = tmp_path / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.example",
                "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
                "refresh_token": "1//user-refresh",
                "token_uri": oauth.token_uri,
            }
        )
    )
    creds = await _get(GarSource(type="gar"), {}, tmp_path)
    assert creds is not None and creds.password == "ya29.access-token-1"
    assert oauth.requests[0].form()["grant_type"] == "refresh_token"


async def test_metadata_server_from_environment(tmp_path: Path) -> None:
    """On GCE/GKE the token comes from the metadata server named by GCE_METADATA_HOST."""
    with FakeGceMetadata() as metadata:
        creds = await _get(GarSource(type="gar"), {"GCE_METADATA_HOST": metadata.netloc}, tmp_path)
    assert creds is not None
    assert (creds.username, creds.password) == ("oauth2accesstoken", "ya29.metadata-token-1")
    assert metadata.requests[0].header("metadata-flavor") == "Google"


async def test_metadata_host_in_source_and_error(tmp_path: Path) -> None:
    """The source's metadata_host wins; a refusal is an AuthError with the server's text."""
    with FakeGceMetadata() as metadata:
        source = GarSource(type="gar", metadata_host=metadata.url)
        creds = await _get(source, {"GCE_METADATA_HOST": "127.0.0.1:9"}, tmp_path)
        assert creds is not None and creds.password == "ya29.metadata-token-1"
        wrong = GarSource(type="gar", metadata_host=metadata.url + "/nope")
        with pytest.raises(AuthError, match=r"GCP metadata server token failed: 404 Not Found"):
            await _get(wrong, {}, tmp_path)


async def test_unsupported_credential_type(tmp_path: Path) -> None:
    """A key file of a type imagebot cannot use is named in the error."""
    key = tmp_path / "wif.json"
    key.write_text(json.dumps({"type": "external_account", "audience": "x"}))
    with pytest.raises(AuthError, match="credential type 'external_account' is not supported"):
        await _get(GarSource(type="gar", key_file=str(key)), {}, tmp_path)


async def test_hourly_token_is_reused_then_renewed(tmp_path: Path) -> None:
    """A one-hour token serves lookups for its first half hour, then a new one is fetched."""
    with FakeGceMetadata() as metadata:
        provider = provider_for(
            {"*.gcr.io": GarSource(type="gar", metadata_host=metadata.url)},
            env={},
            home=tmp_path,
            docker_config=False,
        )
        start = datetime.now(UTC)
        first = await provider.get("eu.gcr.io", now=start)
        again = await provider.get("eu.gcr.io", now=start + timedelta(minutes=25))
        with capture_logs() as logs:
            later = await provider.get("eu.gcr.io", now=start + timedelta(minutes=35))
    assert first is not None and again is not None and later is not None
    assert again.password == first.password == "ya29.metadata-token-1"
    assert later.password == "ya29.metadata-token-2"
    assert "ya29" not in repr(logs)

"""Azure ACR refresh tokens via Entra ID sign-in and the registry's /oauth2/exchange."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from structlog.testing import capture_logs

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.spec import AcrSource
from tests.support.cloudfakes import FakeAcrExchange, FakeAzureImds, FakeEntraId

pytestmark = pytest.mark.anyio

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
SECRET = "client-secret-value-example"
FEDERATED = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig"
ACR_USER = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def entra() -> Iterator[FakeEntraId]:
    with FakeEntraId(
        tenant=TENANT, client_id=CLIENT, secret=SECRET, federated_token=FEDERATED
    ) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def acr(entra: FakeEntraId) -> Iterator[FakeAcrExchange]:
    # The exchange is the registry itself; on loopback it speaks plain HTTP, as Docker allows.
    fake = FakeAcrExchange(accepted_tokens=entra.issued, service="", lifetime=timedelta(hours=3))
    with fake:
        fake.service = fake.netloc
        yield fake  # type: ignore[misc]


def _secret_source(entra: FakeEntraId, **kw: object) -> AcrSource:
    return AcrSource(
        type="acr",
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret_env="ACR_SECRET",
        authority_host=entra.url,
        **kw,  # type: ignore[arg-type]
    )


async def _get(
    registry: str, source: AcrSource, env: dict[str, str], home: Path, now: datetime | None = None
) -> Credentials | None:
    provider = provider_for({registry: source}, env=env, home=home, docker_config=False)
    return await provider.get(registry, now=now or datetime.now(UTC))


async def test_client_secret_then_exchange(
    tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange
) -> None:
    """A service principal's Entra token is exchanged for a refresh token used as password."""
    creds = await _get(acr.netloc, _secret_source(entra), {"ACR_SECRET": SECRET}, tmp_path)
    assert creds is not None
    assert (creds.username, creds.password) == (ACR_USER, acr.issued[0])
    exp = jwt.decode(acr.issued[0], options={"verify_signature": False})["exp"]
    assert creds.expires_at == datetime.fromtimestamp(exp, UTC)
    exchange = acr.requests[0].form()
    assert exchange == {
        "grant_type": "access_token",
        "service": acr.netloc,
        "access_token": "entra-access-1",
        "tenant": TENANT,
    }
    assert entra.requests[0].form()["scope"] == "https://containerregistry.azure.net/.default"


async def test_wrong_client_secret(
    tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange
) -> None:
    """Entra's AADSTS error is reported with the registry and the sign-in that failed."""
    with pytest.raises(AuthError) as caught:
        await _get(acr.netloc, _secret_source(entra), {"ACR_SECRET": "wrong"}, tmp_path)
    assert str(caught.value) == (
        f"{acr.netloc}: Entra ID client-secret sign-in failed: 401 invalid_client: "
        "AADSTS7000215: Invalid client secret provided."
    )
    assert acr.requests == []


async def test_workload_identity_from_environment(
    tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange
) -> None:
    """AKS workload identity: the federated token file is the client assertion."""
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(FEDERATED)
    env = {
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_CLIENT_ID": CLIENT,
        "AZURE_TENANT_ID": TENANT,
        "AZURE_AUTHORITY_HOST": entra.url + "/",
    }
    creds = await _get(acr.netloc, AcrSource(type="acr"), env, tmp_path)
    assert creds is not None and creds.password == acr.issued[0]
    form = entra.requests[0].form()
    assert form["client_assertion"] == FEDERATED
    assert "client_secret" not in form


async def test_exchange_refusal(tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange) -> None:
    """An exchange answering 401 with registry errors gives the registry's code and message."""
    acr.service = "someone-else.azurecr.io"
    with pytest.raises(AuthError) as caught:
        await _get(acr.netloc, _secret_source(entra), {"ACR_SECRET": SECRET}, tmp_path)
    assert str(caught.value) == (
        f"{acr.netloc}: ACR refresh-token exchange failed: 401 UNAUTHORIZED: service does not match"
    )


async def test_exchange_url_override(
    tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange
) -> None:
    """exchange_url sends the exchange elsewhere while ``service`` stays the registry host."""
    acr.service = "myacr.azurecr.io"
    source = _secret_source(entra, exchange_url=f"{acr.url}/oauth2/exchange")
    creds = await _get("myacr.azurecr.io", source, {"ACR_SECRET": SECRET}, tmp_path)
    assert creds is not None and creds.username == ACR_USER


async def test_managed_identity(tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange) -> None:
    """Without secret or federated token, IMDS gives a managed-identity token for ACR."""
    with FakeAzureImds() as imds:
        acr.accepted_tokens = imds.issued
        env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": imds.url, "AZURE_CLIENT_ID": CLIENT}
        creds = await _get(acr.netloc, AcrSource(type="acr"), env, tmp_path)
    assert creds is not None and creds.password == acr.issued[0]
    query = imds.requests[0].query
    assert query["resource"] == ["https://containerregistry.azure.net/"]
    assert query["client_id"] == [CLIENT]
    assert "tenant" not in acr.requests[0].form()


async def test_no_azure_credentials(tmp_path: Path) -> None:
    """With managed identity off and nothing else configured, the error says what is missing."""
    with pytest.raises(AuthError, match=r"^myacr\.azurecr\.io: ACR: no Azure credentials"):
        await _get("myacr.azurecr.io", AcrSource(type="acr", managed_identity=False), {}, tmp_path)


async def test_refresh_token_renewed_before_expiry(
    tmp_path: Path, entra: FakeEntraId, acr: FakeAcrExchange
) -> None:
    """The 3 h refresh token is reused for 2 h 30 min and renewed after, and never logged."""
    provider = provider_for(
        {"*": _secret_source(entra)}, env={"ACR_SECRET": SECRET}, home=tmp_path, docker_config=False
    )
    start = datetime.now(UTC)
    with capture_logs() as logs:
        first = await provider.get(acr.netloc, now=start)
        same = await provider.get(acr.netloc, now=start + timedelta(hours=2, minutes=25))
        renewed = await provider.get(acr.netloc, now=start + timedelta(hours=2, minutes=35))
    assert first is not None and same is not None and renewed is not None
    assert same.password == first.password == acr.issued[0]
    assert renewed.password == acr.issued[1]
    assert len(entra.issued) == 2
    assert not any(token in repr(logs) for token in [*acr.issued, *entra.issued, SECRET])

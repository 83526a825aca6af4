"""AWS ECR tokens through the standard AWS credential chain, against local AWS fakes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from imagebot.errors import AuthError
from imagebot.registry.credentials import Credentials
from imagebot.registry.providers import provider_for
from imagebot.registry.providers.ecr import EcrHost, parse_ecr_host
from imagebot.registry.providers.spec import EcrSource
from tests.support.cloudfakes import (
    AwsKey,
    FakeContainerCredentials,
    FakeEcr,
    FakeImds,
    FakeSts,
)

pytestmark = pytest.mark.anyio

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
STATIC = AwsKey("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
PROFILE = AwsKey("AKIAPROFILEEXAMPLE01", "profile-secret-access-key-example-000000")
TEMPORARY = AwsKey("ASIATEMPORARYEXAMPLE", "temporary-secret-key-example", "FwoGZXIvYXdzEXAMPLE")
# No IMDS probing of 169.254.169.254 unless a test points it at a fake.
QUIET = {"AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def ecr() -> Iterator[FakeEcr]:
    with FakeEcr([STATIC, PROFILE, TEMPORARY]) as fake:
        yield fake  # type: ignore[misc]


def _source(fake: FakeEcr, **kw: str) -> EcrSource:
    return EcrSource(type="ecr", endpoint_url=fake.url, **kw)


async def _get(
    fake: FakeEcr, env: dict[str, str], home: Path, registry: str = REGISTRY, **kw: str
) -> Credentials | None:
    provider = provider_for(
        {registry: _source(fake, **kw)}, env=env, home=home, docker_config=False
    )
    return await provider.get(registry, now=datetime.now(UTC))


def _static_env() -> dict[str, str]:
    return {
        **QUIET,
        "AWS_ACCESS_KEY_ID": STATIC.access_key_id,
        "AWS_SECRET_ACCESS_KEY": STATIC.secret_access_key,
    }


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (REGISTRY, EcrHost("123456789012", "eu-west-1")),
        (
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            EcrHost("123456789012", "us-gov-west-1", fips=True),
        ),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", EcrHost("123456789012", "cn-north-1")),
        ("123456789012.dkr-ecr.ap-south-2.on.aws", EcrHost("123456789012", "ap-south-2")),
        ("public.ecr.aws", EcrHost(None, "us-east-1", public=True)),
        ("12345.dkr.ecr.eu-west-1.amazonaws.com", None),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.io", None),
        ("ghcr.io", None),
    ],
)
def test_ecr_hosts(host: str, expected: EcrHost | None) -> None:
    """Account, region and FIPS are read from every ECR host form; other hosts are not ECR."""
    assert parse_ecr_host(host) == expected


async def test_token_from_environment_keys(ecr: FakeEcr, tmp_path: Path) -> None:
    """Env keys sign GetAuthorizationToken for the host's region; AWS:<password> is decoded."""
    now = datetime.now(UTC)
    creds = await _get(ecr, _static_env(), tmp_path)
    assert creds is not None
    assert (creds.username, creds.password) == ("AWS", "ecr-password-1")
    assert creds.expires_at is not None
    assert (
        timedelta(hours=11, minutes=59) < creds.expires_at - now <= timedelta(hours=12, minutes=1)
    )
    assert ecr.regions == ["eu-west-1"]
    assert ecr.requests[0].header("x-amz-target") == FakeEcr.TARGET


async def test_unknown_access_key_is_reported_with_aws_error(ecr: FakeEcr, tmp_path: Path) -> None:
    """AWS's 400 UnrecognizedClientException surfaces as an AuthError naming the registry."""
    env = {**QUIET, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000", "AWS_SECRET_ACCESS_KEY": "x"}
    with pytest.raises(AuthError) as caught:
        await _get(ecr, env, tmp_path)
    assert str(caught.value) == (
        f"{REGISTRY}: ECR GetAuthorizationToken failed: 400 UnrecognizedClientException "
        "The security token included in the request is invalid."
    )


async def test_wrong_secret_fails_the_signature(ecr: FakeEcr, tmp_path: Path) -> None:
    """A wrong secret key gives AWS's InvalidSignatureException, and the secret is not shown."""
    env = {
        **QUIET,
        "AWS_ACCESS_KEY_ID": STATIC.access_key_id,
        "AWS_SECRET_ACCESS_KEY": "wrong-secret",
    }
    with pytest.raises(AuthError, match="InvalidSignatureException") as caught:
        await _get(ecr, env, tmp_path)
    assert "wrong-secret" not in str(caught.value)


async def test_shared_credentials_file_and_configured_profile(ecr: FakeEcr, tmp_path: Path) -> None:
    """A configured profile reads ~/.aws/credentials and beats keys in the environment."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAUNKNOWN000000000\naws_secret_access_key = x\n"
        f"[ci]\naws_access_key_id = {PROFILE.access_key_id}\n"
        f"aws_secret_access_key = {PROFILE.secret_access_key}\n"
    )
    creds = await _get(ecr, _static_env(), tmp_path, profile="ci")
    assert creds is not None and creds.password == "ecr-password-1"
    assert PROFILE.access_key_id in (ecr.requests[0].header("authorization") or "")


async def test_aws_profile_and_config_file_variables(ecr: FakeEcr, tmp_path: Path) -> None:
    """AWS_PROFILE and AWS_SHARED_CREDENTIALS_FILE in the injected env pick file and profile."""
    creds_file = tmp_path / "elsewhere.ini"
    creds_file.write_text(
        f"[deploy]\naws_access_key_id = {PROFILE.access_key_id}\n"
        f"aws_secret_access_key = {PROFILE.secret_access_key}\n"
    )
    env = {**QUIET, "AWS_PROFILE": "deploy", "AWS_SHARED_CREDENTIALS_FILE": str(creds_file)}
    creds = await _get(ecr, env, tmp_path)
    assert creds is not None and creds.username == "AWS"
    assert PROFILE.access_key_id in (ecr.requests[0].header("authorization") or "")


async def test_web_identity_token_file(ecr: FakeEcr, tmp_path: Path) -> None:
    """EKS IRSA: the token file is exchanged at STS and the session credentials sign the call."""
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig")
    role = "arn:aws:iam::123456789012:role/imagebot"
    with FakeSts(
        web_identity_token="eyJhbGciOiJSUzI1NiJ9.projected-sa-token.sig",
        role_arn=role,
        issues=TEMPORARY,
    ) as sts:
        env = {
            **QUIET,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": role,
            "AWS_ROLE_SESSION_NAME": "imagebot",
            "AWS_ENDPOINT_URL_STS": sts.url,
        }
        creds = await _get(ecr, env, tmp_path)
    assert creds is not None and creds.password == "ecr-password-1"
    assert sts.requests[0].form()["RoleSessionName"] == "imagebot"
    assert ecr.requests[0].header("x-amz-security-token") == TEMPORARY.session_token


async def test_rejected_web_identity_is_an_auth_error(ecr: FakeEcr, tmp_path: Path) -> None:
    """An STS refusal of the web identity token is reported, not swallowed."""
    token_file = tmp_path / "token"
    token_file.write_text("stale-token")
    with FakeSts(
        web_identity_token="fresh", role_arn="arn:aws:iam::1:role/r", issues=TEMPORARY
    ) as sts:
        env = {
            **QUIET,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
            "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
            "AWS_ENDPOINT_URL_STS": sts.url,
        }
        with pytest.raises(
            AuthError,
            match=f"^{REGISTRY}: ECR GetAuthorizationToken failed: .*InvalidIdentityToken",
        ):
            await _get(ecr, env, tmp_path)


async def test_container_credentials_endpoint(ecr: FakeEcr, tmp_path: Path) -> None:
    """ECS / EKS Pod Identity: credentials come from the container endpoint with its token."""
    with FakeContainerCredentials(authorization="pod-identity-token", issues=TEMPORARY) as ep:
        env = {
            **QUIET,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{ep.url}/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-token",
        }
        creds = await _get(ecr, env, tmp_path)
    assert creds is not None and creds.password == "ecr-password-1"
    assert ep.requests[0].path == "/v1/credentials"
    assert ecr.requests[0].header("x-amz-security-token") == TEMPORARY.session_token


async def test_instance_metadata_v2(ecr: FakeEcr, tmp_path: Path) -> None:
    """EC2: IMDSv2 session token first, then the role's credentials."""
    with FakeImds(role="imagebot-node", issues=TEMPORARY) as imds:
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url + "/"}
        creds = await _get(ecr, env, tmp_path)
    assert creds is not None and creds.password == "ecr-password-1"
    assert [(r.method, r.path) for r in imds.requests][:3] == [
        ("PUT", "/latest/api/token"),
        ("GET", "/latest/meta-data/iam/security-credentials/"),
        ("GET", "/latest/meta-data/iam/security-credentials/imagebot-node"),
    ]


async def test_no_credentials_anywhere(ecr: FakeEcr, tmp_path: Path) -> None:
    """With no source in the chain, the error says so and names the registry."""
    with pytest.raises(
        AuthError, match=f"^{REGISTRY}: ECR GetAuthorizationToken: no AWS credentials"
    ):
        await _get(ecr, dict(QUIET), tmp_path)
    assert ecr.requests == []


async def test_endpoint_from_environment(ecr: FakeEcr, tmp_path: Path) -> None:
    """AWS_ENDPOINT_URL_ECR in the injected environment redirects the ECR API."""
    provider = provider_for(
        {"*.dkr.ecr.*.amazonaws.com": EcrSource(type="ecr")},
        env={**_static_env(), "AWS_ENDPOINT_URL_ECR": ecr.url},
        home=tmp_path,
        docker_config=False,
    )
    creds = await provider.get(
        "210987654321.dkr.ecr.us-east-2.amazonaws.com", now=datetime.now(UTC)
    )
    assert creds is not None and creds.password == "ecr-password-1"
    assert ecr.regions == ["us-east-2"]


async def test_ecr_public(ecr: FakeEcr, tmp_path: Path) -> None:
    """public.ecr.aws uses the ECR Public API in us-east-1."""
    creds = await _get(ecr, _static_env(), tmp_path, registry="public.ecr.aws")
    assert creds is not None and creds.password == "ecr-password-1"
    assert ecr.requests[0].header("x-amz-target") == FakeEcr.PUBLIC_TARGET
    assert ecr.regions == ["us-east-1"]


async def test_region_for_a_non_ecr_host(ecr: FakeEcr, tmp_path: Path) -> None:
    """A pull-through alias host needs a region: from the source, else AWS_REGION, else error."""
    with pytest.raises(AuthError, match=r"^ecr\.internal\.example: ECR: the AWS region"):
        await _get(ecr, _static_env(), tmp_path, registry="ecr.internal.example")
    await _get(
        ecr, {**_static_env(), "AWS_REGION": "sa-east-1"}, tmp_path, registry="ecr.internal.example"
    )
    await _get(
        ecr, _static_env(), tmp_path, registry="ecr.internal.example", region="ap-northeast-3"
    )
    assert ecr.regions == ["sa-east-1", "ap-northeast-3"]


async def test_token_is_renewed_before_its_12_hours_run_out(ecr: FakeEcr, tmp_path: Path) -> None:
    """Lookups reuse one token for 11 h 30 min, then a new one is fetched ahead of expiry."""
    provider = provider_for(
        {REGISTRY: _source(ecr)}, env=_static_env(), home=tmp_path, docker_config=False
    )
    start = datetime.now(UTC)
    first = await provider.get(REGISTRY, now=start)
    assert first is not None and first.expires_at is not None
    for hours in (1, 6, 11):
        same = await provider.get(REGISTRY, now=start + timedelta(hours=hours))
        assert same is not None and same.password == first.password
    assert len(ecr.issued) == 1
    renewed = await provider.get(REGISTRY, now=first.expires_at - timedelta(minutes=29))
    assert renewed is not None and renewed.password == "ecr-password-2"
    assert len(ecr.issued) == 2


async def test_token_never_reaches_logs_or_repr(ecr: FakeEcr, tmp_path: Path) -> None:
    """Neither the ECR password nor the AWS secret key appear in logs or reprs."""
    provider = provider_for(
        {REGISTRY: _source(ecr)}, env=_static_env(), home=tmp_path, docker_config=False
    )
    with capture_logs() as logs:
        creds = await provider.get(REGISTRY, now=datetime.now(UTC))
    assert creds is not None
    text = repr(logs) + repr(creds) + str(creds) + repr(provider)
    assert "ecr-password-1" not in text
    assert STATIC.secret_access_key not in text
    assert base64.b64encode(b"AWS:ecr-password-1").decode() not in text

"""How a registry's credentials are configured (the ``credentials:`` block of registries.yaml).

Pure models: validated on load so a typo is reported with file, line and field; the
providers that act on them live beside this module.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicSource(_Source):
    """A username and a password given inline, in an environment variable, or in a file."""

    type: Literal["basic"]
    username: str | None = None
    username_env: str | None = None
    username_file: str | None = None
    password: str | None = None
    password_env: str | None = None
    password_file: str | None = None


class DockerConfigSource(_Source):
    """A Docker ``config.json`` (``auths``, ``credHelpers``, ``credsStore``) or a
    ``.dockerconfigjson`` file from a mounted Kubernetes pull secret."""

    type: Literal["docker-config"]
    path: str | None = Field(
        default=None, description="default: $DOCKER_CONFIG/config.json, ~/.docker/config.json"
    )


class EcrSource(_Source):
    """AWS ECR: GetAuthorizationToken with the standard AWS credential chain."""

    type: Literal["ecr"]
    region: str | None = Field(default=None, description="default: taken from the registry host")
    profile: str | None = None
    endpoint_url: str | None = Field(default=None, description="ECR API endpoint override")


class GarSource(_Source):
    """Google Artifact Registry / GCR: an OAuth2 access token as ``oauth2accesstoken``."""

    type: Literal["gar"]
    key_file: str | None = Field(
        default=None, description="service-account key JSON; default: the metadata server"
    )
    metadata_host: str | None = Field(default=None, description="metadata server host override")


class AcrSource(_Source):
    """Azure ACR: an Entra ID (AAD) token exchanged for an ACR refresh token."""

    type: Literal["acr"]
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    federated_token_file: str | None = None
    authority_host: str | None = None


CredentialSource = Annotated[
    BasicSource | DockerConfigSource | EcrSource | GarSource | AcrSource,
    Field(discriminator="type"),
]

"""How a registry's credentials are configured (the ``credentials:`` block of registries.yaml).

Pure models: validated on load so a typo is reported with file, line and field; the
providers that act on them live beside this module.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: where the block is written (``registries.yaml:3``), for messages about it
    _at: str = PrivateAttr(default="")

    @property
    def at(self) -> str:
        return self._at


class BasicSource(_Source):
    """A username and a password given inline, in an environment variable, or in a file."""

    def origin(self) -> str:
        """Where the password comes from, said for messages: never the secret itself."""
        where = (
            f"password from ${self.password_env}" if self.password_env
            else f"password from {self.password_file}" if self.password_file
            else "password given inline"
        )  # fmt: skip
        return f"{where}, {self._at}" if self._at else where

    type: Literal["basic"]
    username: str | None = None
    username_env: str | None = None
    username_file: str | None = None
    password: str | None = None
    password_env: str | None = None
    password_file: str | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> BasicSource:
        for name in ("username", "password"):
            given = [
                f"{name}{suffix}"
                for suffix in ("", "_env", "_file")
                if getattr(self, f"{name}{suffix}") is not None
            ]
            if len(given) != 1:
                raise ValueError(
                    f"give exactly one of {name}, {name}_env, {name}_file"
                    + (f" (got {', '.join(given)})" if given else "")
                )
        return self


class DockerConfigSource(_Source):
    """A Docker ``config.json`` (``auths``, ``credHelpers``, ``credsStore``) or a
    ``.dockerconfigjson`` file from a mounted Kubernetes pull secret."""

    type: Literal["docker-config"]
    path: str | None = Field(
        default=None, description="default: $DOCKER_CONFIG/config.json, ~/.docker/config.json"
    )
    env: str | None = Field(
        default=None,
        description="an environment variable holding the config JSON itself "
        "(GitLab CI's DOCKER_AUTH_CONFIG); used instead of path",
    )


class SecretSource(_Source):
    """A mounted Kubernetes secret directory: ``.dockerconfigjson`` (type
    ``kubernetes.io/dockerconfigjson``), ``.dockercfg`` (``kubernetes.io/dockercfg``) or
    ``username`` + ``password`` files (``kubernetes.io/basic-auth``). Re-read on every lookup
    so a rotated secret is picked up without a restart."""

    type: Literal["secret"]
    path: str


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
    client_secret_file: str | None = None
    federated_token_file: str | None = Field(
        default=None, description="default: $AZURE_FEDERATED_TOKEN_FILE (workload identity)"
    )
    authority_host: str | None = Field(
        default=None, description="default: $AZURE_AUTHORITY_HOST, login.microsoftonline.com"
    )
    scope: str = Field(
        default="https://containerregistry.azure.net/.default",
        description="Entra ID scope of the token exchanged at the registry",
    )
    managed_identity: bool = Field(
        default=True,
        description="with neither a client secret nor a federated token, ask the instance "
        "metadata service (IMDS) for a managed-identity token",
    )
    exchange_url: str | None = Field(
        default=None, description="default: https://<registry>/oauth2/exchange"
    )


CredentialSource = Annotated[
    BasicSource | DockerConfigSource | SecretSource | EcrSource | GarSource | AcrSource,
    Field(discriminator="type"),
]

"""The ``verify:`` block of a policy file: which signatures and attestations an image must
carry before imagebot moves an environment to it.

```yaml
verify:
  signatures:
    - key: cosign.pub
    - keyless: {identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*",
                issuer: https://token.actions.githubusercontent.com}
  require: any
  attestations:
    - {type: https://slsa.dev/provenance/v1, builder_id: https://github.com/actions/runner,
       source: github.com/acme/app}
```

Pure models and matching; finding signatures in the registry and checking them is
``imagebot.registry.signatures``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Keyless(_Model):
    """A Sigstore signature: a Fulcio certificate for an identity, logged in Rekor."""

    identity: str | None = Field(
        default=None,
        description="the certificate's identity (SAN): exact, or a glob where * is any text",
    )
    identity_regexp: str | None = Field(
        default=None,
        description="or a regular expression, as cosign's --certificate-identity-regexp",
    )
    issuer: str = Field(description="OIDC issuer, e.g. https://token.actions.githubusercontent.com")
    trusted_root: str | None = Field(
        default=None,
        description="a private Sigstore's trusted_root.json, beside the policy; default: the"
        " public-good Sigstore root shipped with imagebot",
    )

    @field_validator("identity_regexp")
    @classmethod
    def _regexp(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an issuer URL (https://…)")
        return value

    @model_validator(mode="after")
    def _one_identity(self) -> Keyless:
        if (self.identity is None) == (self.identity_regexp is None):
            raise ValueError("give one of identity or identity_regexp")
        return self

    def trusts(self, identity: str, issuer: str) -> bool:
        if issuer != self.issuer:
            return False
        if self.identity_regexp is not None:
            return re.fullmatch(self.identity_regexp, identity) is not None
        assert self.identity is not None
        # fnmatch's [ ] classes would make a URL with brackets mean something else.
        return fnmatch.fnmatchcase(identity, self.identity.replace("[", "[[]"))

    def words(self) -> str:
        return f"{self.identity or self.identity_regexp} ({self.issuer})"


class Signature(_Model):
    """One signature the image may carry: by a key, or keyless."""

    key: str | None = Field(default=None, description="a PEM public key file beside the policy")
    key_env: str | None = Field(default=None, description="environment variable with the PEM key")
    key_file: str | None = Field(default=None, description="a PEM public key file (any path)")
    keyless: Keyless | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Signature:
        given = [n for n in ("key", "key_env", "key_file", "keyless") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of key, key_env, key_file or keyless")
        return self

    def words(self) -> str:
        if self.keyless is not None:
            return f"keyless {self.keyless.words()}"
        return f"key {self.key or self.key_file or '$' + str(self.key_env)}"


class Attestation(_Model):
    """An in-toto attestation the image must carry, signed like its signatures."""

    type: str = Field(description="the predicate type, e.g. https://slsa.dev/provenance/v1")
    builder_id: str | None = Field(default=None, description="the builder it must name")
    source: str | None = Field(
        default=None, description="the repository it was built from, e.g. github.com/acme/app"
    )


class VerifySpec(_Model):
    """What an image must carry before it is promoted; an image entry's block wins over the
    environment's."""

    signatures: tuple[Signature, ...] = Field(default=(), description="trusted signers")
    require: Literal["any", "all"] = Field(
        default="any", description="any | all of the signatures above"
    )
    attestations: tuple[Attestation, ...] = Field(default=())
    repository: str | None = Field(
        default=None,
        description="where the signatures are kept when not beside the image (as"
        " COSIGN_REPOSITORY), e.g. ghcr.io/acme/signatures",
    )

    @model_validator(mode="after")
    def _something(self) -> VerifySpec:
        if not self.signatures:
            raise ValueError("give at least one entry of signatures")
        return self


def bare_source(uri: str) -> str:
    """``git+https://github.com/acme/app.git@refs/tags/v1`` is ``github.com/acme/app``."""
    return re.sub(r"^(git\+)?[a-z]+://", "", uri).split("@")[0].removesuffix(".git").rstrip("/")


def source_matches(wanted: str, found: str) -> bool:
    return bare_source(found) == bare_source(wanted)

"""Per-registry TLS against a real HTTPS registry: CA bundle, client certificate, verification."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from imagebot.errors import RegistryError
from imagebot.registry import RegistryClient, RetryPolicy
from imagebot.registry.settings import parse_registries
from tests.support.certs import CertificateAuthority
from tests.support.registry import Tls, run_registry


def _list(host: str, yaml: str) -> list[str]:
    settings = parse_registries(yaml, source="registries.yaml")

    async def main() -> list[str]:
        async with RegistryClient(settings=settings, retry=RetryPolicy(attempts=1)) as client:
            return await client.list_tags(f"{host}/acme/app")

    return anyio.run(main)


def test_ca_bundle_and_client_certificate(tmp_path: Path) -> None:
    """A registry demanding a client certificate is listed with ca_file + client_cert/key,
    and refused (RegistryError, not an ssl exception) without the client certificate."""
    ca = CertificateAuthority(tmp_path / "pki")
    server = ca.issue("server", server=True)
    client = ca.issue("client", server=False)
    with run_registry(tmp_path, tls=Tls(server.cert, server.key, client_ca=ca.ca)) as reg:
        # The registry answers 404 for an unknown repository: TLS and mTLS worked.
        full = (
            f"registries:\n  {reg.host}:\n    insecure: false\n    ca_file: {ca.ca}\n"
            f"    client_cert: {client.cert}\n    client_key: {client.key}\n"
        )
        with pytest.raises(RegistryError, match="not found"):
            _list(reg.host, full)
        no_client = f"registries:\n  {reg.host}:\n    insecure: false\n    ca_file: {ca.ca}\n"
        with pytest.raises(RegistryError) as info:
            _list(reg.host, no_client)
        assert "not found" not in str(info.value) and reg.host in str(info.value)


def test_unknown_ca_is_refused(tmp_path: Path) -> None:
    """Without the registry's CA, verification fails with a RegistryError naming the registry."""
    ca = CertificateAuthority(tmp_path / "pki")
    server = ca.issue("server", server=True)
    with run_registry(tmp_path, tls=Tls(server.cert, server.key)) as reg:
        with pytest.raises(RegistryError) as info:
            _list(reg.host, f"registries:\n  {reg.host}:\n    insecure: false\n")
        assert reg.host in str(info.value) and "CERTIFICATE_VERIFY_FAILED" in str(info.value)

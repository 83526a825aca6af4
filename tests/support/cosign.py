"""Signatures and attestations pushed the way cosign lays them out, made with ``cryptography``.

- classic: tag ``sha256-<hex>.sig`` (simple-signing payloads, signature annotation) and
  ``sha256-<hex>.att`` (DSSE envelopes of in-toto statements);
- Sigstore bundles v0.3 as OCI 1.1 referrers, found through the fallback tag
  ``sha256-<hex>`` (an image index), as cosign writes them to a registry without the
  referrers API (Distribution 2.8).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.support.registry import OCI_INDEX, OCI_MANIFEST, Registry, _canonical, _Pusher

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def new_key(kind: str = "ecdsa") -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: PrivateKey, data: bytes) -> bytes:
    """As cosign signs with a key: ECDSA and RSA PKCS#1 v1.5 over SHA-256; Ed25519 pure."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def simple_signing(reference: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def statement(digest: str, predicate_type: str, predicate: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "image", "digest": {"sha256": digest.split(":")[1]}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    ).encode()


def slsa(builder: str, source: str) -> dict[str, Any]:
    """An SLSA provenance v1 predicate as GitHub's builders write it."""
    return {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": {"repository": f"https://{source}"}},
            "resolvedDependencies": [{"uri": f"git+https://{source}@refs/tags/v1"}],
        },
        "runDetails": {"builder": {"id": builder}},
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def envelope(key: PrivateKey, payload: bytes) -> dict[str, Any]:
    kind = "application/vnd.in-toto+json"
    return {
        "payloadType": kind,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": "", "sig": base64.b64encode(sign(key, pae(kind, payload))).decode()}
        ],
    }


Layer = tuple[str, bytes, dict[str, str]]


def _artifact(pusher: _Pusher, layers: list[Layer], **extra: Any) -> bytes:
    config = pusher.blob(b"{}")
    kind = EMPTY if extra else "application/vnd.oci.image.config.v1+json"
    described = []
    for media_type, data, notes in layers:
        layer = {"mediaType": media_type, "digest": pusher.blob(data), "size": len(data)}
        described.append({**layer, "annotations": notes} if notes else layer)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        **extra,
        "config": {"mediaType": kind, "digest": config, "size": 2},
        "layers": described,
    }
    return _canonical(manifest)


def push_signature(
    registry: Registry,
    repository: str,
    digest: str,
    key: PrivateKey,
    *,
    names: str | None = None,
    tamper: bool = False,
    also: PrivateKey | None = None,
) -> None:
    """A classic cosign signature of ``digest`` (its payload naming ``names`` if given;
    ``tamper``: the payload altered after signing); ``also``: a second signer's layer, as
    cosign appends one to the same ``.sig`` manifest."""
    payload = simple_signing(f"{registry.host}/{repository}", names or digest)
    layers = []
    for signer in (key, *([also] if also else [])):
        signature = b64(sign(signer, payload))
        signed = payload
        if tamper:
            signed = payload.replace(b'"optional": null', b'"optional": {"by": "mallory"}')
        layers.append((signed, {"dev.cosignproject.cosign/signature": signature}))
    push_sig_layers(registry, repository, digest, layers)


def push_sig_layers(
    registry: Registry, repository: str, digest: str, layers: list[tuple[bytes, dict[str, str]]]
) -> None:
    """The ``sha256-<hex>.sig`` manifest: one simple-signing layer per (payload, annotations)."""
    pusher = _Pusher(registry, repository, None)
    try:
        body = _artifact(pusher, [(SIMPLE_SIGNING, data, notes) for data, notes in layers])
        pusher.manifest(digest.replace(":", "-") + ".sig", body, OCI_MANIFEST)
    finally:
        pusher.client.close()


def push_attestation(
    registry: Registry, repository: str, digest: str, key: PrivateKey, payload: bytes
) -> None:
    """A classic cosign attestation: a DSSE envelope under ``sha256-<hex>.att``."""
    pusher = _Pusher(registry, repository, None)
    try:
        data = json.dumps(envelope(key, payload)).encode()
        body = _artifact(
            pusher, [(DSSE, data, {"predicateType": json.loads(payload)["predicateType"]})]
        )
        pusher.manifest(digest.replace(":", "-") + ".att", body, OCI_MANIFEST)
    finally:
        pusher.client.close()


def push_bundle(registry: Registry, repository: str, digest: str, bundle: bytes) -> None:
    """A Sigstore bundle as an OCI 1.1 referrer of ``digest``, listed in the fallback tag."""
    pusher = _Pusher(registry, repository, None)
    try:
        size = len(pusher.client.get(f"{pusher.base}/manifests/{digest}",
                                     headers={"Accept": OCI_MANIFEST}).content)  # fmt: skip
        body = _artifact(
            pusher,
            [(BUNDLE, bundle, {})],
            artifactType=BUNDLE,
            subject={"mediaType": OCI_MANIFEST, "digest": digest, "size": size},
        )
        ref = pusher.manifest(_digest_of(body), body, OCI_MANIFEST)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": ref,
                    "size": len(body),
                    "artifactType": BUNDLE,
                }
            ],
        }
        pusher.manifest(digest.replace(":", "-"), _canonical(index), OCI_INDEX)
    finally:
        pusher.client.close()


def _digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()

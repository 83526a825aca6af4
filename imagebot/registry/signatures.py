"""The ``verify`` gate's registry side: find an image's signatures and attestations and check
them against the policy (docs/verify.md).

Where they are found, cheapest first, stopping once the policy is met:

1. classic cosign: the tag ``sha256-<hex>.sig``, one simple-signing payload per layer with
   its signature in an annotation; attestations under ``sha256-<hex>.att`` (DSSE envelopes);
2. Sigstore bundles (v0.3, what cosign pushes by default) attached as OCI 1.1 referrers:
   the referrers API, else the fallback tag ``sha256-<hex>`` holding an image index (a
   registry without the API, such as CNCF Distribution 2.8, gets that tag from cosign).

Keys are checked with ``cryptography``; keyless bundles with ``sigstore`` offline, against the
trusted root the policy names or the public-good one shipped with sigstore.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from imagebot.core.reference import DIGEST_RE
from imagebot.core.verify_policy import (
    Attestation,
    Signature,
    VerifySpec,
    bare_source,
    source_matches,
)
from imagebot.registry.manifests import OCI_INDEX, OCI_MANIFEST, BadManifest, verify_digest

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
#: a classic keyless signature's Fulcio certificate (PEM) and Rekor bundle (SET and entry)
CERTIFICATE = "dev.sigstore.cosign/certificate"
REKOR_BUNDLE = "dev.sigstore.cosign/bundle"
SIGNATURE_TYPE = "cosign container image signature"
#: the predicate of the statement a Sigstore bundle signs to sign an image
SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

_ISSUER_V1, _ISSUER_V2 = "1.3.6.1.4.1.57264.1.1", "1.3.6.1.4.1.57264.1.8"
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class Fetcher(Protocol):
    async def fetch(self, repository: str, path: str, *, accept: str) -> bytes | None: ...


#: Checks one keyless signature (a bundle, or a classic ``.sig`` layer) against a trusted
#: root: the signed payload and the certificate's (identity, issuer), or ValueError saying why.
Checker = Callable[["Found"], tuple[bytes, tuple[str, str]]]


@dataclass(frozen=True)
class Trust:
    """One ``signatures`` entry made usable: its public key, or its keyless checker."""

    spec: Signature
    key: PublicKey | None = None
    keyless: Checker | None = None
    root: str = ""  # the sha256 of the trusted root file a keyless checker trusts


@dataclass(frozen=True)
class Found:
    """One signed thing found in the registry."""

    kind: str  # "simple" | "dsse" | "bundle"
    payload: bytes  # the simple-signing payload, the DSSE payload, or the bundle JSON
    signature: bytes = b""
    payload_type: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)  # a layer's annotations


@dataclass(frozen=True)
class Outcome:
    """The verdict: ``how`` what verified ("key cosign.pub"), else ``why`` not."""

    how: str | None
    why: str = ""


async def find_and_check(
    registry: Fetcher, repository: str, digest: str, spec: VerifySpec, trust: Sequence[Trust]
) -> Outcome:
    """Look for signatures of ``digest`` source by source until ``spec`` is met."""
    where = spec.repository or repository
    hexed = digest.replace(":", "-")
    sources: list[Callable[[], Awaitable[list[Found]]]] = [
        lambda: _classic(registry, where, f"{hexed}.sig", SIMPLE_SIGNING),
        lambda: _referrers(registry, where, digest, hexed),
    ]
    if spec.attestations:
        sources.append(lambda: _classic(registry, where, f"{hexed}.att", DSSE))
    found: list[Found] = []
    outcome = Outcome(None, "no signature")
    for source in sources:
        found += await source()
        outcome = judge(found, digest, spec, trust)
        if outcome.how is not None:
            break
    return outcome


async def _manifest(registry: Fetcher, where: str, ref: str, accept: str) -> dict[str, Any]:
    body = await registry.fetch(where, f"manifests/{ref}", accept=accept)
    return {} if body is None else _json(body)


async def _layers(
    registry: Fetcher, where: str, manifest: dict[str, Any], media_type: str
) -> list[tuple[bytes, dict[str, str]]]:
    """(content, annotations) of each layer of ``media_type`` whose content matches its
    digest; anything malformed is skipped (a registry's answer is untrusted input)."""
    out = []
    for layer in manifest.get("layers") or []:
        if not isinstance(layer, dict) or layer.get("mediaType") != media_type:
            continue
        digest = str(layer.get("digest"))
        if not DIGEST_RE.match(digest):
            continue
        blob = await registry.fetch(where, f"blobs/{digest}", accept="*/*")
        try:
            verify_digest(blob or b"", digest)
        except BadManifest:
            continue
        notes = layer.get("annotations")
        out.append((blob or b"", notes if isinstance(notes, dict) else {}))
    return out


async def _classic(registry: Fetcher, where: str, tag: str, media_type: str) -> list[Found]:
    manifest = await _manifest(registry, where, tag, OCI_MANIFEST)
    out = []
    for blob, notes in await _layers(registry, where, manifest, media_type):
        if media_type == DSSE:
            out.append(_envelope(blob))
        else:
            out.append(
                Found("simple", blob, _b64(str(notes.get(SIGNATURE_ANNOTATION, ""))), notes=notes)
            )
    return out


async def _referrers(registry: Fetcher, where: str, digest: str, hexed: str) -> list[Found]:
    index = await _manifest(registry, where, hexed, OCI_INDEX)  # the fallback tag
    if not index:  # no fallback tag: the referrers API, where the registry has it
        body = await registry.fetch(where, f"referrers/{digest}", accept=OCI_INDEX)
        index = _json(body or b"{}")
    out = []
    for entry in index.get("manifests") or []:
        if not isinstance(entry, dict) or entry.get("artifactType") != BUNDLE:
            continue
        ref = str(entry.get("digest"))
        if not DIGEST_RE.match(ref):
            continue
        manifest = await _manifest(registry, where, ref, OCI_MANIFEST)
        out += [
            Found("bundle", b) for b, _ in (await _layers(registry, where, manifest, BUNDLE))[:1]
        ]
    return out


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _envelope(blob: bytes) -> Found:
    env = _json(blob)
    sigs = env.get("signatures") or [{}]
    return Found(
        "dsse",
        _b64(str(env.get("payload", ""))),
        _b64(str(sigs[0].get("sig", ""))),
        str(env.get("payloadType", "")),
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def key_verifies(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """As cosign signs: ECDSA P-256 and RSA (PKCS#1 v1.5) over SHA-256, Ed25519 over data."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class _Statement:
    """A payload some trusted signer vouches for."""

    signer: str
    kind: str  # "simple" (a simple-signing payload) or "statement" (in-toto)
    body: dict[str, Any]


def judge(found: Sequence[Found], digest: str, spec: VerifySpec, trust: Sequence[Trust]) -> Outcome:
    """What ``found`` proves about ``digest`` under ``spec``."""
    if not found:
        return Outcome(None, "no signature")
    vouched: list[_Statement] = []
    strangers: list[str] = []
    broken: list[str] = []  # why keyless signatures did not verify
    for item in found:
        for t in trust:
            stmt = _vouch(item, t, strangers, broken)
            if stmt is not None:
                vouched.append(stmt)
    signers: dict[str, str] = {}  # signer -> why its signatures do not count ("" if one does)
    for stmt in vouched:
        if stmt.kind == "statement" and stmt.body.get("predicateType") != SIGN_PREDICATE:
            continue  # an attestation, not a signature of the image
        why = _names_other(stmt, digest)
        if why is None or stmt.signer not in signers:
            signers[stmt.signer] = why or ""
    passed = [t.spec.words() for t in trust if signers.get(t.spec.words()) == ""]
    needed = len(trust) if spec.require == "all" else 1
    if len(passed) < needed:
        if spec.require == "all" and passed:
            missing = [t.spec.words() for t in trust if t.spec.words() not in passed]
            return Outcome(None, f"require all: no valid signature by {', '.join(missing)}")
        reasons = [why for why in signers.values() if why]
        if reasons:
            return Outcome(None, reasons[0])
        if strangers:
            return Outcome(None, f"signed by an identity the policy does not trust: {strangers[0]}")
        because = broken[0] if broken else "signed by another key, or altered"
        return Outcome(
            None,
            f"no signature verifies with {' or '.join(t.spec.words() for t in trust)}"
            f" ({len(found)} found: {because})",
        )
    for wanted in spec.attestations:
        why = _attested(wanted, vouched, digest)
        if why:
            return Outcome(None, why)
    return Outcome(", ".join(passed))


def _vouch(item: Found, t: Trust, strangers: list[str], broken: list[str]) -> _Statement | None:
    """The payload of ``item`` if signer ``t`` signed it, else None."""
    kind = "simple" if item.kind == "simple" else "statement"
    if t.keyless is not None:
        if item.kind == "dsse":
            return None  # keyless attestations are read from bundles
        try:
            payload, (identity, issuer) = t.keyless(item)
        except ValueError as exc:
            broken.append(str(exc))
            return None
        assert t.spec.keyless is not None
        if not t.spec.keyless.trusts(identity, issuer):
            strangers.append(f"{identity} ({issuer})")
            return None
        return _Statement(t.spec.words(), kind, _json(payload))
    if item.kind == "bundle":
        return _key_bundle(item, t)
    signed = item.payload if item.kind == "simple" else pae(item.payload_type, item.payload)
    if t.key is None or not key_verifies(t.key, item.signature, signed):
        return None
    return _Statement(t.spec.words(), kind, _json(item.payload))


def _key_bundle(item: Found, t: Trust) -> _Statement | None:
    """A bundle signed with a key (no certificate): its DSSE envelope checked with the key."""
    env = _json(item.payload).get("dsseEnvelope")
    if t.key is None or not isinstance(env, dict):
        return None
    found = _envelope(json.dumps(env).encode())
    if not key_verifies(t.key, found.signature, pae(found.payload_type, found.payload)):
        return None
    return _Statement(t.spec.words(), "statement", _json(found.payload))


def _subjects(body: dict[str, Any]) -> list[str]:
    return [
        f"sha256:{s['digest']['sha256']}"
        for s in body.get("subject") or []
        if isinstance(s, dict) and isinstance(s.get("digest"), dict) and "sha256" in s["digest"]
    ]


def _names_other(stmt: _Statement, digest: str) -> str | None:
    """Why a validly signed payload is not a signature of ``digest`` (None: it is)."""
    body = stmt.body
    if stmt.kind == "simple":
        critical = body.get("critical") or {}
        named = (critical.get("image") or {}).get("docker-manifest-digest")
        if critical.get("type") != SIGNATURE_TYPE:
            return f"signature by {stmt.signer} is not a {SIGNATURE_TYPE}"
    else:
        names = _subjects(body)
        named = digest if digest in names else (names[0] if names else None)
    if named != digest:
        return f"signature by {stmt.signer} names another digest: {named}"
    return None


def _attested(wanted: Attestation, vouched: Sequence[_Statement], digest: str) -> str | None:
    """Why no vouched statement attests ``wanted`` for ``digest`` (None: one does)."""
    why = f"no {wanted.type} attestation"
    for stmt in vouched:
        body = stmt.body
        if body.get("predicateType") != wanted.type or digest not in _subjects(body):
            continue
        predicate = body.get("predicate") or {}
        builder, sources = _provenance(predicate)
        if wanted.builder_id is not None and builder != wanted.builder_id:
            why = f"provenance builder {builder}"
        elif wanted.source and not any(source_matches(wanted.source, s) for s in sources):
            why = f"provenance source {bare_source(sources[0]) if sources else '(none)'}"
        else:
            return None
    return why


def _provenance(predicate: dict[str, Any]) -> tuple[str | None, list[str]]:
    """(builder id, source URIs) of SLSA provenance v1 or v0.2."""
    run = predicate.get("runDetails") or {}
    build = predicate.get("buildDefinition") or {}
    workflow = ((build.get("externalParameters") or {}).get("workflow")) or {}
    builder = (run.get("builder") or predicate.get("builder") or {}).get("id")
    sources = [
        workflow.get("repository"),
        ((predicate.get("invocation") or {}).get("configSource") or {}).get("uri"),
        *(d.get("uri") for d in build.get("resolvedDependencies") or [] if isinstance(d, dict)),
        *(m.get("uri") for m in predicate.get("materials") or [] if isinstance(m, dict)),
    ]
    return builder, [s for s in sources if isinstance(s, str)]


def certificate_identity(cert: x509.Certificate) -> tuple[str, str]:
    """(identity, issuer) of a Fulcio certificate: its SAN and its OIDC issuer extension."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = [*san.get_values_for_type(x509.UniformResourceIdentifier),
             *san.get_values_for_type(x509.RFC822Name)]  # fmt: skip
    issuers = {ext.oid.dotted_string: bytes(ext.value.value) for ext in cert.extensions
               if isinstance(ext.value, x509.UnrecognizedExtension)}  # fmt: skip
    # 1.1 holds the raw text; 1.8, its successor, a DER UTF8String (tag, length, text).
    issuer = issuers.get(_ISSUER_V1) or issuers.get(_ISSUER_V2, b"\0\0")[2:]
    return (names[0] if names else ""), issuer.decode(errors="replace")

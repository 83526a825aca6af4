"""The trust material a ``verify`` block names — public keys, Sigstore trusted roots — loaded
once, and verification outcomes kept per digest and signer in the cache.

``imagebot check`` reports a bad key or trusted root at its file:line through
:func:`trust_problems`; a cycle refuses the image's new versions with the same words.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from imagebot.cache import Cache
from imagebot.core.governing import Governed
from imagebot.core.plan import Change, EnvironmentPlan
from imagebot.core.policy import LoadedPolicy
from imagebot.core.promotion.views import Prepared, refuse
from imagebot.core.selection import Rejection
from imagebot.core.verify_policy import Keyless, Signature, VerifySpec
from imagebot.core.yamldoc import dotted
from imagebot.errors import RegistryError
from imagebot.registry.scan import Registry
from imagebot.registry.signatures import (
    CERTIFICATE,
    REKOR_BUNDLE,
    Fetcher,
    Found,
    Outcome,
    PublicKey,
    Trust,
    certificate_identity,
    find_and_check,
    key_verifies,
)


class TrustError(ValueError):
    """A key or trusted root cannot be used; ``field`` names where the policy gives it."""

    def __init__(self, field: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def load_trust(
    spec: VerifySpec, *, base: Path, environ: Mapping[str, str] = os.environ
) -> list[Trust]:
    """Every ``signatures`` entry with its key or keyless checker; raises TrustError."""
    return [load_signature(s, i, base=base, environ=environ) for i, s in enumerate(spec.signatures)]


def load_signature(
    sig: Signature, i: int, *, base: Path, environ: Mapping[str, str] = os.environ
) -> Trust:
    """``signatures[i]`` made usable: its public key read, or its trusted root loaded."""
    at = ("signatures", i)
    if sig.keyless is not None:
        return _keyless(sig, sig.keyless, base, at)
    return Trust(sig, key=_key(sig, base, environ, at))


def _key(sig: Signature, base: Path, environ: Mapping[str, str], at: tuple[str | int, ...]) -> Any:
    if sig.key_env is not None:
        field, pem = "key_env", environ.get(sig.key_env, "").encode()
        if not pem:
            raise TrustError((*at, field), f"environment variable {sig.key_env} is not set")
    else:
        field = "key" if sig.key is not None else "key_file"
        path = base / Path(str(sig.key or sig.key_file)).expanduser()
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise TrustError((*at, field), f"cannot read {path}: {exc.strerror}") from None
    try:
        key = load_pem_public_key(pem)
    except ValueError:
        raise TrustError((*at, field), "not a PEM public key") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1):
        raise TrustError((*at, field), f"ECDSA key on {key.curve.name}; cosign keys use P-256")
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise TrustError((*at, field), "not an ECDSA P-256, RSA or Ed25519 key")
    return key


class _AnyIdentity:
    """sigstore's policy hook; the identity is compared afterwards, to say whose it was."""

    def verify(self, cert: Any) -> None:
        return None


@functools.lru_cache(maxsize=16)
def _verifier(path: str | None, changed: int) -> Any:
    """sigstore's Verifier over a trusted root file (None: the public-good root shipped with
    sigstore), loaded once per file version: every image of a policy shares it."""
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier

    if path is None:
        return Verifier.production(offline=True)
    return Verifier(trusted_root=TrustedRoot.from_file(path))


def _keyless(sig: Signature, spec: Keyless, base: Path, at: tuple[str | int, ...]) -> Trust:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    try:
        path = base / Path(spec.trusted_root).expanduser() if spec.trusted_root else None
        verifier = _verifier(path and str(path), path.stat().st_mtime_ns if path else 0)
        root = hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
    except (OSError, ValueError, SigstoreError) as exc:
        field = (*at, "keyless", "trusted_root")
        raise TrustError(field, f"unusable trusted root: {exc}") from None

    def check(item: Found) -> tuple[bytes, tuple[str, str]]:
        try:
            if item.kind == "simple":
                return _classic_keyless(item, verifier)
            bundle = Bundle.from_json(item.payload)
            _, payload = verifier.verify_dsse(bundle, _AnyIdentity())
            return payload, certificate_identity(bundle.signing_certificate)
        except Exception as exc:  # sigstore and cryptography raise many kinds: "not valid"
            raise ValueError(str(exc)) from None

    return Trust(sig, keyless=check, root=root)


def _classic_keyless(item: Found, verifier: Any) -> tuple[bytes, tuple[str, str]]:
    """cosign's classic keyless ``.sig`` layer, checked as cosign checks it. sigstore-python
    takes only Rekor entries with an inclusion proof, which this layout lacks, so its parts
    are used one by one. The chain is built from the trusted root, never the annotation's."""
    from sigstore._internal.sct import verify_sct
    from sigstore._internal.timestamp import TimestampSource, TimestampVerificationResult
    from sigstore._internal.trust import KeyringPurpose
    from sigstore._utils import KeyID

    def b64(text: Any) -> bytes:
        return base64.b64decode(text, validate=True)

    try:
        cert = x509.load_pem_x509_certificate(str(item.notes[CERTIFICATE]).encode())
        rekor = json.loads(item.notes[REKOR_BUNDLE])
        promise = {k: rekor["Payload"][k] for k in ("body", "integratedTime", "logIndex", "logID")}
        spec = json.loads(b64(promise["body"]))["spec"]  # a hashedrekord entry
        sig = spec["signature"]
        logged = (spec["data"]["hash"], b64(sig["content"]),
                  x509.load_pem_x509_certificate(b64(sig["publicKey"]["content"])))  # fmt: skip
        when = datetime.fromtimestamp(promise["integratedTime"], UTC)
        stamp, log_id = b64(rekor["SignedEntryTimestamp"]), KeyID(bytes.fromhex(promise["logID"]))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ValueError("no Fulcio certificate and Rekor bundle (a key signature?)") from None
    key = cert.public_key()
    if not isinstance(key, PublicKey) or not key_verifies(key, item.signature, item.payload):
        raise ValueError("the signature does not verify with its certificate's key")
    root = verifier._trusted_root
    try:  # the promise signs its canonical JSON: sorted keys, no blanks
        canonical = json.dumps(promise, sort_keys=True, separators=(",", ":")).encode()
        root.rekor_keyring(KeyringPurpose.VERIFY).verify(
            key_id=log_id, signature=stamp, data=canonical
        )
    except Exception:  # sigstore's errors and cryptography's alike
        raise ValueError("Rekor's promise (SET) does not verify") from None
    sha256 = {"algorithm": "sha256", "value": hashlib.sha256(item.payload).hexdigest()}
    if logged != (sha256, item.signature, cert):
        raise ValueError("the Rekor entry is for another payload, signature or certificate")
    at = TimestampVerificationResult(source=TimestampSource.TRANSPARENCY_SERVICE, time=when)
    chain = verifier._verify_chain_at_time(cert, at)  # valid when Rekor logged it
    verify_sct(cert, chain, root.ct_keyring(KeyringPurpose.VERIFY))
    return item.payload, certificate_identity(cert)


class Store:
    """Passes of the verify gate per (digest, policy): in the one cache when there is one,
    else for this process. Only passes are kept: an unsigned image may be signed later; a
    valid signature of a digest stays valid."""

    def __init__(self, cache: Cache | None = None) -> None:
        self._cache = cache
        self._memory: dict[tuple[str, str], str] = {}

    def get(self, digest: str, policy: str) -> str | None:
        known = self._memory.get((digest, policy))
        if known is None and self._cache is not None:
            known = self._cache.verification(digest, policy)
        return known

    def put(self, digest: str, policy: str, how: str) -> None:
        self._memory[(digest, policy)] = how
        if self._cache is not None:
            self._cache.store_verification(digest, policy, how)


def policy_key(spec: VerifySpec, trust: list[Trust], where: str) -> str:
    """What a stored outcome depends on: the block, its keys' bytes and trusted roots' (a
    root that no longer trusts a CA must not keep its passes), where signatures live."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    keys = [
        t.key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex()
        for t in trust
        if t.key is not None
    ]
    text = f"{spec.model_dump_json()}|{'|'.join(keys + [t.root for t in trust if t.root])}|{where}"
    return hashlib.sha256(text.encode()).hexdigest()


async def verify_digest(
    registry: Fetcher,
    store: Store,
    repository: str,
    digest: str,
    spec: VerifySpec,
    trust: list[Trust],
) -> Outcome:
    """The verify gate for one digest: the stored pass, or a look in the registry. A
    registry error fails the gate with the error; it never passes."""
    key = policy_key(spec, trust, spec.repository or repository)
    known = store.get(digest, key)
    if known is not None:
        return Outcome(known)
    try:
        outcome = await find_and_check(registry, repository, digest, spec, trust)
    except RegistryError as exc:
        return Outcome(None, f"signatures could not be read: {exc}")
    if outcome.how is not None:
        store.put(digest, key, outcome.how)
    return outcome


async def verify_gate(
    loaded: LoadedPolicy,
    prepared: Prepared,
    replan: Callable[[Prepared], Awaitable[EnvironmentPlan]],
    *,
    registry: Registry,
    store: Store,
) -> EnvironmentPlan:
    """The last gate of the chain. Each image's new version must carry the signatures its
    ``verify`` block asks for; a refused version is turned away with the reason and the
    environment planned again, so the next candidate is tried — newest first, stopping at
    the first that passes. Only versions every cheaper gate let through are verified."""
    plan = await replan(prepared)
    groups = {g.image: g for g in plan.governed}
    loaded_trust: dict[VerifySpec, list[Trust] | TrustError] = {}
    refused_all: dict[str, dict[str, Rejection]] = {}
    while True:
        outcomes: dict[Change, Outcome] = {}

        async def one(change: Change, spec: VerifySpec, into: dict[Change, Outcome]) -> None:
            args = (loaded, groups[change.image], change, spec, loaded_trust, registry, store)
            into[change] = await _verify_change(*args)

        async with anyio.create_task_group() as tg:  # images verify concurrently
            for change in {(c.image, c.new_tag): c for c in plan.changes}.values():
                spec = groups[change.image].rule.verify or loaded.policy.verify
                if spec is not None and change.new_tag is not None:
                    tg.start_soon(one, change, spec, outcomes)
        verified = {c.image: o.how for c, o in outcomes.items() if o.how is not None}
        refused: dict[str, dict[str, Rejection]] = {}
        for c, o in outcomes.items():
            if o.how is None:
                refused.setdefault(c.image, {})[str(c.new_tag)] = Rejection("verify", o.why)
        if not refused:
            break
        for image, tags in refused.items():
            refused_all.setdefault(image, {}).update(tags)
            prepared = refuse(prepared, groups[image], tags)
        plan = await replan(prepared)
    changes = tuple(
        replace(c, reason=f"{c.reason}; verified: {verified[c.image]}")
        if c.image in verified
        else c
        for c in plan.changes
    )
    return replace(plan, changes=changes, verified=verified, refused=refused_all)


async def _verify_change(
    loaded: LoadedPolicy,
    g: Governed,
    change: Change,
    spec: VerifySpec,
    loaded_trust: dict[VerifySpec, list[Trust] | TrustError],
    registry: Registry,
    store: Store,
) -> Outcome:
    trust = loaded_trust.get(spec)
    if trust is None:  # once per distinct block: a hundred entries may share one key
        try:
            trust = load_trust(spec, base=Path(loaded.source).parent)
        except TrustError as exc:
            trust = exc
        loaded_trust[spec] = trust
    if isinstance(trust, TrustError):
        at = g.written_at if g.rule.verify is not None else ()
        where = dotted((*at, "verify", *trust.field))
        return Outcome(None, f"{loaded.at(where)}: {where}: {trust}")
    digest = change.image_digest
    if digest is None:
        try:
            digest = await registry.digest(change.repository, str(change.new_tag))
        except RegistryError as exc:
            return Outcome(None, f"digest could not be read: {exc}")
    return await verify_digest(registry, store, change.repository, digest, spec, trust)

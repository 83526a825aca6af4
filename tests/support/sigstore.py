"""A private Sigstore made in the test: a CA standing in for Fulcio, a CT log key and a
Rekor log key, their trusted_root.json, and v0.3 bundles that sigstore-python verifies
offline against it — a leaf certificate for a workflow identity with its embedded SCT, a
DSSE envelope, and a dsse/0.0.1 Rekor entry with inclusion proof, checkpoint and promise.
Also cosign's classic keyless ``.sig`` layer: the signature of a simple-signing payload and
its certificate, chain and Rekor bundle (a hashedrekord entry and its promise) annotations.
"""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from tests.support.cosign import b64, pae

SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2_OID = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # its successor: a DER UTF8String
ORIGIN = "rekor.test - 1"
START = "2020-01-01T00:00:00Z"


def _der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _octets(data: bytes) -> bytes:
    """DER OCTET STRING."""
    n = len(data)
    size = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else b"\x82" + n.to_bytes(2)
    return b"\x04" + size + data


class PrivateSigstore:
    """A Fulcio CA, a CT log and a Rekor log, each one key made now."""

    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test fulcio")])
        public = self.ca_key.public_key()
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(1)
            .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )

    def trusted_root(self) -> dict[str, Any]:
        def log(key: ec.EllipticCurvePrivateKey, url: str) -> dict[str, Any]:
            der = _der(key.public_key())
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(der),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": START},
                },
                "logId": {"keyId": b64(hashlib.sha256(der).digest())},
            }

        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(self.rekor_key, "https://rekor.test")],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "test", "commonName": "test fulcio"},
                    "uri": "https://fulcio.test",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": b64(self.ca.public_bytes(serialization.Encoding.DER))}
                        ]
                    },
                    "validFor": {"start": START},
                }
            ],
            "ctlogs": [log(self.ct_key, "https://ct.test")],
            "timestampAuthorities": [],
        }

    def leaf(
        self,
        key: ec.EllipticCurvePrivateKey,
        identity: str,
        issuer: str,
        now: datetime,
        *,
        issuer_v2: bool = False,
    ) -> x509.Certificate:
        """A Fulcio-like certificate for ``identity`` with its SCT embedded; the issuer in the
        v1 extension (raw text) or, with ``issuer_v2``, the v2 one (a DER UTF8String)."""
        oidc = (
            x509.UnrecognizedExtension(
                ISSUER_V2_OID, b"\x0c" + bytes([len(issuer)]) + issuer.encode()
            )
            if issuer_v2
            else x509.UnrecognizedExtension(ISSUER_OID, issuer.encode())
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(minutes=10))
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(oidc, critical=False)
        )
        # The SCT signs the certificate without the SCT list (RFC 6962's precertificate);
        # appended last, it leaves every other byte of the TBS as signed.
        tbs = builder.sign(self.ca_key, hashes.SHA256()).tbs_certificate_bytes
        stamp = int(now.timestamp()) * 1000
        issuer_hash = hashlib.sha256(_der(self.ca_key.public_key())).digest()
        signed = struct.pack("!BBQH", 0, 0, stamp, 1) + issuer_hash
        signed += len(tbs).to_bytes(3) + tbs + struct.pack("!H", 0)
        signature = _sign(self.ct_key, signed)
        log_id = hashlib.sha256(_der(self.ct_key.public_key())).digest()
        sct = struct.pack("!B32sQH", 0, log_id, stamp, 0) + struct.pack(
            "!BBH", 4, 3, len(signature)
        )
        sct += signature
        listed = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        cert = builder.add_extension(
            x509.UnrecognizedExtension(SCT_OID, _octets(listed)), critical=False
        ).sign(self.ca_key, hashes.SHA256())
        assert cert.tbs_precertificate_bytes == tbs
        return cert

    def bundle(self, payload: bytes, *, identity: str, issuer: str, now: datetime) -> bytes:
        """A v0.3 bundle: ``payload`` (an in-toto statement) in a DSSE envelope signed by a
        fresh key certified for ``identity``, logged in the test Rekor."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.leaf(key, identity, issuer, now)
        kind = "application/vnd.in-toto+json"
        sig = _sign(key, pae(kind, payload))
        envelope = {"payload": b64(payload), "payloadType": kind, "signatures": [{"sig": b64(sig)}]}
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [{"signature": b64(sig), "verifier": b64(pem)}],
                },
            }
        ).encode()
        log_id = hashlib.sha256(_der(self.rekor_key.public_key())).digest()
        integrated = int(now.timestamp())
        promise = json.dumps(
            {"body": b64(body), "integratedTime": integrated, "logID": log_id.hex(), "logIndex": 0},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        root = hashlib.sha256(b"\x00" + body).digest()  # a log of one entry: its leaf hash
        note = f"{ORIGIN}\n1\n{b64(root)}\n"
        signed_note = b64(log_id[:4] + _sign(self.rekor_key, note.encode()))
        entry = {
            "logIndex": "0",
            "logId": {"keyId": b64(log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {"signedEntryTimestamp": b64(_sign(self.rekor_key, promise))},
            "inclusionProof": {
                "logIndex": "0",
                "rootHash": b64(root),
                "treeSize": "1",
                "hashes": [],
                "checkpoint": {"envelope": f"{note}\n\u2014 rekor.test {signed_note}\n"},
            },
            "canonicalizedBody": b64(body),
        }
        return json.dumps(
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {
                    "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
                    "tlogEntries": [entry],
                },
                "dsseEnvelope": envelope,
            }
        ).encode()

    def classic(
        self,
        payload: bytes,
        *,
        identity: str,
        issuer: str,
        now: datetime,
        issuer_v2: bool = False,
        tamper_set: bool = False,
        logged: bytes | None = None,
    ) -> dict[str, str]:
        """The annotations of cosign's classic keyless ``.sig`` layer for ``payload``: its
        signature by a fresh key certified for ``identity``, the certificate, the chain,
        and the Rekor bundle — a hashedrekord entry and its promise (SET); ``tamper_set``:
        the promise signed over another log index than the bundle states; ``logged``: the
        payload the entry records, if not ``payload``."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.leaf(key, identity, issuer, now, issuer_v2=issuer_v2)
        sig = _sign(key, payload)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        body = json.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "hashedrekord",
                "spec": {
                    "data": {
                        "hash": {
                            "algorithm": "sha256",
                            "value": hashlib.sha256(logged or payload).hexdigest(),
                        }
                    },
                    "signature": {"content": b64(sig), "publicKey": {"content": b64(pem)}},
                },
            }
        ).encode()
        log_id = hashlib.sha256(_der(self.rekor_key.public_key())).digest().hex()
        promise = {
            "body": b64(body),
            "integratedTime": int(now.timestamp()),
            "logIndex": 7,
            "logID": log_id,
        }
        signed = {**promise, "logIndex": 8} if tamper_set else promise
        stamp = _sign(
            self.rekor_key, json.dumps(signed, separators=(",", ":"), sort_keys=True).encode()
        )
        return {
            "dev.cosignproject.cosign/signature": b64(sig),
            "dev.sigstore.cosign/certificate": pem.decode(),
            "dev.sigstore.cosign/chain": self.ca.public_bytes(serialization.Encoding.PEM).decode(),
            "dev.sigstore.cosign/bundle": json.dumps(
                {"SignedEntryTimestamp": b64(stamp), "Payload": promise}
            ),
        }

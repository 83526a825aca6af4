"""The verify gate end to end: a real registry holding signatures made here, a real git
remote, and imagebot's commands."""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imagebot.core.policy_file import parse_policy
from tests.support.cli import run_cli
from tests.support.cosign import (
    PrivateKey,
    envelope,
    new_key,
    public_pem,
    push_attestation,
    push_bundle,
    push_sig_layers,
    push_signature,
    simple_signing,
    slsa,
    statement,
)
from tests.support.gitenv import DEPLOYMENT, make_remote, push_files, show, trailers
from tests.support.registry import Registry, push_image, run_registry
from tests.support.sigstore import PrivateSigstore

TAGS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0")
SLSA = "https://slsa.dev/provenance/v1"
RUNNER = "https://github.com/actions/runner"


@dataclass
class Setup:
    registry: Registry
    remote: Path
    policies: Path
    cache: Path
    image: str
    digests: dict[str, str]
    key: PrivateKey

    def policy(self, verify: str, *, extra: str = "") -> None:
        (self.policies / "dev.yaml").write_text(
            textwrap.dedent(
                f"""\
                environment: dev
                repo: {{url: {self.remote}, path: envs/dev}}
                images:
                  - name: app
                    repository: {self.image}
                    verify:
                """
            )
            + textwrap.indent(textwrap.dedent(verify), " " * 6)
            + extra
        )

    def trust_keyless(self, sigstore: PrivateSigstore, identity: str | None = None) -> Path:
        """A keyless verify block trusting ``identity`` (default: the release workflow) as
        issued to GitHub Actions, with ``sigstore``'s trusted root beside the policy, whose
        path this returns."""
        root = self.policies / "trusted_root.json"
        root.write_text(json.dumps(sigstore.trusted_root()))
        self.policy(
            f"""\
            signatures:
              - keyless:
                  identity: "{identity or WORKFLOW}"
                  issuer: {ACTIONS}
                  trusted_root: trusted_root.json
            """
        )
        return root

    def cli(self, *args: str) -> tuple[int, str]:
        result = run_cli(*args, "--policies", str(self.policies), "--cache-dir", str(self.cache))
        return result.returncode, result.stdout + result.stderr

    def check(self) -> tuple[int, str]:
        result = run_cli("check", "--policies", str(self.policies))
        return result.returncode, result.stdout + result.stderr

    def json(self, *args: str) -> Any:
        result = run_cli(*args, "--output", "json", "--policies", str(self.policies),
                         "--cache-dir", str(self.cache))  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def sign(self, tag: str, key: PrivateKey | None = None, **kw: object) -> None:
        push_signature(self.registry, "acme/app", self.digests[tag], key or self.key, **kw)  # type: ignore[arg-type]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with run_registry(tmp_path / "registry") as registry:
        image = f"{registry.host}/acme/app"
        digests = {tag: push_image(registry, "acme/app", tag) for tag in TAGS}
        remote = make_remote(
            tmp_path, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()}
        )
        policies = tmp_path / "policies"
        policies.mkdir()
        key = new_key()
        (policies / "cosign.pub").write_bytes(public_pem(key))
        yield Setup(registry, remote, policies, tmp_path / "cache", image, digests, key)


def verdicts(setup: Setup) -> dict[str, str]:
    """tag -> reason, from `plan --explain --output json`."""
    (decision,) = setup.json("plan", "--explain")["environments"][0]["decisions"]
    return {v["tag"]: v["reason"] for v in decision["verdicts"]}


def test_key_signed_image_is_promoted_and_the_rest_refused_with_reasons(setup: Setup) -> None:
    """Signed with the trusted key: 1.1.0 is taken; a stranger's key, no signature, a payload
    naming another digest and a tampered payload (1.2.0–1.5.0) are each refused, newest
    first, with their reason, and the commit says what verified it."""
    setup.policy("signatures: [{key: cosign.pub}]\n")
    setup.sign("1.1.0")
    setup.sign("1.2.0", new_key())
    setup.sign("1.4.0", names=setup.digests["1.1.0"])
    setup.sign("1.5.0", tamper=True)
    reasons = verdicts(setup)
    stranger = "rejected: no signature verifies with key cosign.pub (1 found: signed by"
    assert reasons["1.5.0"].startswith(stranger)
    assert reasons["1.4.0"] == (
        f"rejected: signature by key cosign.pub names another digest: {setup.digests['1.1.0']}"
    )
    assert reasons["1.3.0"] == "rejected: no signature"
    assert reasons["1.2.0"].startswith(stranger)
    assert reasons["1.1.0"].startswith("chosen:")

    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.1.0" in show(setup.remote, "envs/dev/app.yaml")
    assert ("Imagebot-Verified", "key cosign.pub") in trailers(setup.remote)


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_rsa_and_ed25519_keys_verify(setup: Setup, kind: str) -> None:
    """A cosign signature by an RSA or Ed25519 key verifies against that public key."""
    key = new_key(kind)
    (setup.policies / "cosign.pub").write_bytes(public_pem(key))
    setup.policy("signatures: [{key: cosign.pub}]\n")
    setup.sign("1.5.0", key)
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.5.0" in show(setup.remote, "envs/dev/app.yaml")


def test_signatures_kept_in_another_repository(setup: Setup) -> None:
    """verify.repository: signatures are read from the named repository, not the image's."""
    setup.policy(
        f"repository: {setup.registry.host}/acme/signatures\nsignatures: [{{key: cosign.pub}}]\n"
    )
    push_signature(setup.registry, "acme/signatures", setup.digests["1.3.0"], setup.key)
    setup.sign("1.5.0", new_key())  # beside the image, by a stranger: not where we look
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.3.0" in show(setup.remote, "envs/dev/app.yaml")


def test_status_shows_what_an_image_waits_for(setup: Setup) -> None:
    """Nothing signed: the image stays, and status says verify refused the newest version."""
    setup.policy("signatures: [{key: cosign.pub}]\n")
    (record,) = setup.json("status")["environments"][0]["images"]
    assert record["candidate"] is None
    assert record["gate"] == "verify"
    assert record["waiting_for"] == "verify: no signature"
    verified = {c["tag"]: c["gate"] for c in record["candidates"]}
    assert {t: verified[t] for t in TAGS[1:]} == dict.fromkeys(TAGS[1:], "verify")


def test_provenance_with_the_right_source_passes_and_a_wrong_source_is_refused(
    setup: Setup,
) -> None:
    """An SLSA provenance attestation naming the policy's builder and source passes (1.4.0);
    one naming another source is refused (1.5.0) with the source it names."""
    setup.policy(
        f"""\
        signatures: [{{key: cosign.pub}}]
        attestations:
          - {{type: "{SLSA}", builder_id: "{RUNNER}", source: github.com/acme/app}}
        """
    )
    for tag, source in (("1.4.0", "github.com/acme/app"), ("1.5.0", "github.com/evil/x")):
        setup.sign(tag)
        payload = statement(setup.digests[tag], SLSA, slsa(RUNNER, source))
        push_attestation(setup.registry, "acme/app", setup.digests[tag], setup.key, payload)
    reasons = verdicts(setup)
    assert reasons["1.5.0"] == "rejected: provenance source github.com/evil/x"
    assert reasons["1.4.0"].startswith("chosen:")


def test_a_verified_digest_costs_no_request_on_the_next_cycle(setup: Setup) -> None:
    """The second plan answers the verify gate from the cache: the registry's log shows no
    second request for the signature."""
    setup.policy("signatures: [{key: cosign.pub}]\n")
    setup.sign("1.5.0")
    sig_tag = setup.digests["1.5.0"].replace(":", "-") + ".sig"
    for _ in range(2):
        code, out = setup.cli("plan")
        assert code == 0, out
        assert "verified: key cosign.pub" in out
    assert setup.registry.log.read_text().count(f'"GET /v2/acme/app/manifests/{sig_tag} ') == 1


def test_check_names_a_bad_key_at_its_line(setup: Setup) -> None:
    """`imagebot check` reports an unreadable key and a key that is not PEM at file:line."""
    (setup.policies / "broken.pub").write_text("not a key\n")
    setup.policy("signatures: [{key: missing.pub}, {key: broken.pub}]\n")
    code, out = setup.check()
    assert code == 1, out
    source = setup.policies / "dev.yaml"
    assert f"{source}:7: images[0].verify.signatures[0].key: cannot read" in out
    assert f"{source}:7: images[0].verify.signatures[1].key: not a PEM public key" in out


def test_check_refuses_a_bad_identity_pattern_and_issuer(setup: Setup) -> None:
    """A keyless entry with an invalid identity regexp and an issuer that is no URL is an
    error at its line."""
    setup.policy(
        """\
        signatures:
          - keyless: {identity_regexp: "(", issuer: github}
        """
    )
    code, out = setup.check()
    assert code == 1, out
    assert "dev.yaml:8: images[0].verify.signatures[0].keyless.identity_regexp:" in out
    assert "invalid regular expression" in out
    assert "dev.yaml:8: images[0].verify.signatures[0].keyless.issuer:" in out


WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1"
ACTIONS = "https://token.actions.githubusercontent.com"
SIGN = "https://sigstore.dev/cosign/sign/v1"


def test_keyless_bundles_verify_offline_against_a_private_trusted_root(setup: Setup) -> None:
    """Sigstore v0.3 bundles found through the fallback referrers tag: signed for the trusted
    workflow identity (1.3.0) is promoted; another identity (1.5.0) and another issuer
    (1.4.0) are refused with whose signature it was."""
    sigstore = PrivateSigstore()
    setup.trust_keyless(
        sigstore, "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
    )
    now = datetime.now(UTC)
    signers = {
        "1.3.0": (WORKFLOW, ACTIONS),
        "1.4.0": (WORKFLOW, "https://gitlab.com"),
        "1.5.0": ("https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main", ACTIONS),
    }
    for tag, (identity, issuer) in signers.items():
        digest = setup.digests[tag]
        payload = statement(digest, SIGN, {})
        bundle = sigstore.bundle(payload, identity=identity, issuer=issuer, now=now)
        push_bundle(setup.registry, "acme/app", digest, bundle)
    reasons = verdicts(setup)
    untrusted = "rejected: signed by an identity the policy does not trust: "
    assert reasons["1.5.0"] == f"{untrusted}{signers['1.5.0'][0]} ({ACTIONS})"
    assert reasons["1.4.0"] == f"{untrusted}{WORKFLOW} (https://gitlab.com)"
    assert reasons["1.3.0"].startswith("chosen:")
    code, out = setup.cli("apply")
    assert code == 0, out
    assert (
        "Imagebot-Verified",
        f"keyless {WORKFLOW.removesuffix('v1')}* ({ACTIONS})",
    ) in trailers(setup.remote)


def test_classic_keyless_signatures_verify_offline_against_a_private_trusted_root(
    setup: Setup,
) -> None:
    """cosign's classic keyless .sig layer (certificate, chain and Rekor bundle annotations):
    signed for the trusted workflow (1.1.0, issuer in the v2 extension) is promoted; another
    identity (1.5.0), another issuer (1.4.0, v1 extension), a Rekor promise that does not
    verify (1.3.0) and a Rekor entry logging another payload (1.2.0) are each refused with
    their reason."""
    sigstore = PrivateSigstore()
    setup.trust_keyless(
        sigstore, "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/*"
    )
    now = datetime.now(UTC)
    evil = "https://github.com/evil/x/.github/workflows/r.yml@refs/heads/main"
    signers: dict[str, dict[str, Any]] = {
        "1.1.0": {"identity": WORKFLOW, "issuer": ACTIONS, "issuer_v2": True},
        "1.2.0": {"identity": WORKFLOW, "issuer": ACTIONS, "logged": b"another payload"},
        "1.3.0": {"identity": WORKFLOW, "issuer": ACTIONS, "tamper_set": True},
        "1.4.0": {"identity": WORKFLOW, "issuer": "https://gitlab.com"},
        "1.5.0": {"identity": evil, "issuer": ACTIONS},
    }
    for tag, signer in signers.items():
        payload = simple_signing(setup.image, setup.digests[tag])
        notes = sigstore.classic(payload, now=now, **signer)
        push_sig_layers(setup.registry, "acme/app", setup.digests[tag], [(payload, notes)])
    reasons = verdicts(setup)
    untrusted = "rejected: signed by an identity the policy does not trust: "
    assert reasons["1.5.0"] == f"{untrusted}{evil} ({ACTIONS})"
    assert reasons["1.4.0"] == f"{untrusted}{WORKFLOW} (https://gitlab.com)"
    assert reasons["1.3.0"].startswith("rejected: no signature verifies with keyless")
    assert reasons["1.3.0"].endswith("(1 found: Rekor's promise (SET) does not verify)")
    assert reasons["1.2.0"].endswith(
        "(1 found: the Rekor entry is for another payload, signature or certificate)"
    )
    assert reasons["1.1.0"].startswith("chosen:")
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.1.0" in show(setup.remote, "envs/dev/app.yaml")
    assert (
        "Imagebot-Verified",
        f"keyless {WORKFLOW.removesuffix('v1')}* ({ACTIONS})",
    ) in trailers(setup.remote)


def test_a_stored_keyless_pass_holds_only_for_the_trusted_root_it_was_checked_against(
    setup: Setup,
) -> None:
    """A keyless signature verified once is not taken from the cache after the trusted root
    file changes: checked again against the new root (another Sigstore's), it is refused."""
    sigstore = PrivateSigstore()
    root = setup.trust_keyless(sigstore)
    payload = simple_signing(setup.image, setup.digests["1.5.0"])
    notes = sigstore.classic(payload, identity=WORKFLOW, issuer=ACTIONS, now=datetime.now(UTC))
    push_sig_layers(setup.registry, "acme/app", setup.digests["1.5.0"], [(payload, notes)])
    assert verdicts(setup)["1.5.0"].startswith("chosen:")
    root.write_text(json.dumps(PrivateSigstore().trusted_root()))
    assert verdicts(setup)["1.5.0"].endswith("(1 found: Rekor's promise (SET) does not verify)")


def test_a_classic_keyless_certificate_from_a_ca_the_root_does_not_hold_is_refused(
    setup: Setup,
) -> None:
    """A classic keyless signature logged in the trusted Rekor but certified by another CA,
    whose certificate the layer's chain annotation carries, is refused: the chain is built
    from the trusted root only."""
    sigstore, foreign = PrivateSigstore(), PrivateSigstore()
    foreign.rekor_key, foreign.ct_key = sigstore.rekor_key, sigstore.ct_key
    setup.trust_keyless(sigstore)
    payload = simple_signing(setup.image, setup.digests["1.5.0"])
    notes = foreign.classic(payload, identity=WORKFLOW, issuer=ACTIONS, now=datetime.now(UTC))
    push_sig_layers(setup.registry, "acme/app", setup.digests["1.5.0"], [(payload, notes)])
    reason = verdicts(setup)["1.5.0"]
    assert reason.startswith("rejected: no signature verifies with keyless"), reason
    assert "(1 found: failed to build timestamp certificate chain: " in reason


def test_a_key_signature_does_not_satisfy_a_keyless_policy(setup: Setup) -> None:
    """A .sig layer signed with a key carries no certificate: a keyless policy refuses it and
    says so."""
    setup.trust_keyless(PrivateSigstore())
    setup.sign("1.5.0")
    reasons = verdicts(setup)
    assert reasons["1.5.0"].endswith(
        "(1 found: no Fulcio certificate and Rekor bundle (a key signature?))"
    )


def test_a_bundle_from_another_sigstore_is_not_trusted(setup: Setup) -> None:
    """A bundle whose certificate chains to another CA fails sigstore's verification: the
    image counts as carrying no valid signature."""
    setup.trust_keyless(PrivateSigstore())
    digest = setup.digests["1.5.0"]
    bundle = PrivateSigstore().bundle(
        statement(digest, SIGN, {}), identity=WORKFLOW, issuer=ACTIONS, now=datetime.now(UTC)
    )
    push_bundle(setup.registry, "acme/app", digest, bundle)
    reasons = verdicts(setup)
    assert reasons["1.5.0"].startswith("rejected: no signature verifies with keyless")


def test_the_copy_paste_policies_of_the_docs_load_and_say_what_they_mean() -> None:
    """docs/verify.md's three policies are valid policy files with a verify block, and the
    GitHub Actions one trusts the release workflow on a tag, not on a branch."""
    text = (Path(__file__).resolve().parents[1] / "docs/verify.md").read_text()
    examples = re.findall(r"^```yaml\n(.*?)^```", text, flags=re.S | re.M)
    loaded = [parse_policy(e, source="docs/verify.md").policy for e in examples]
    specs = [p.verify or p.images[0].verify for p in loaded]
    assert len(specs) == 3 and all(specs)
    keyless = specs[0].signatures[0].keyless  # type: ignore[union-attr]
    assert keyless is not None
    release = "https://github.com/acme/backend/.github/workflows/release.yml@refs/"
    assert keyless.trusts(release + "tags/v1.4.0", ACTIONS)
    assert not keyless.trusts(release + "heads/main", ACTIONS)
    assert not keyless.trusts(release + "tags/v1.4.0", "https://gitlab.com")


def test_a_promoted_environment_verifies_the_digest_it_promotes(setup: Setup) -> None:
    """Staging promotes what dev runs only once that digest is signed: dev takes the unsigned
    1.5.0, staging refuses it (verify: no signature) and stays; signed, it is promoted."""
    staging = DEPLOYMENT.format(image=setup.image)
    files = {"envs/staging/app.yaml": staging.encode()}
    push_files(setup.remote, files, message="staging")
    (setup.policies / "dev.yaml").write_text(
        f"environment: dev\nrepo: {{url: {setup.remote}, path: envs/dev}}\n"
        f"images: [{{name: app, repository: {setup.image}}}]\n"
    )
    (setup.policies / "staging.yaml").write_text(
        f"environment: staging\nrepo: {{url: {setup.remote}, path: envs/staging}}\n"
        "promote: {from: dev}\nverify: {signatures: [{key: cosign.pub}]}\n"
        f"images: [{{name: app, repository: {setup.image}}}]\n"
    )
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.5.0" in show(setup.remote, "envs/dev/app.yaml")
    assert b"app:1.0.0" in show(setup.remote, "envs/staging/app.yaml")
    records = {e["environment"]: e["images"][0] for e in setup.json("status")["environments"]}
    assert records["staging"]["waiting_for"] == "verify: no signature"

    setup.sign("1.5.0")
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.5.0" in show(setup.remote, "envs/staging/app.yaml")
    found = dict(trailers(setup.remote))
    assert found["Imagebot-Environment"] == "staging"
    assert found["Imagebot-Digest"] == setup.digests["1.5.0"]
    assert found["Imagebot-Verified"] == "key cosign.pub"


def test_a_registry_error_while_verifying_refuses_with_the_error(
    setup: Setup, basic_registry: Registry
) -> None:
    """Signatures kept in a registry that refuses imagebot: the gate fails with the
    registry's error and nothing moves — an error never passes."""
    setup.sign("1.5.0")
    setup.policy(
        f"repository: {basic_registry.host}/acme/signatures\nsignatures: [{{key: cosign.pub}}]\n"
    )
    reasons = verdicts(setup)
    why = reasons["1.5.0"]
    assert why.startswith(f"rejected: signatures could not be read: {basic_registry.host}")
    assert why.endswith("the registry requires credentials (Basic) and none are configured")
    assert all(reasons[t].startswith("rejected: signatures could not") for t in TAGS[1:])
    assert reasons["1.0.0"].endswith("already running")


def test_a_bundle_signed_with_a_key_is_found_through_the_fallback_tag(setup: Setup) -> None:
    """A v0.3 bundle holding a DSSE envelope signed with the trusted key (cosign's
    --new-bundle-format with --key), attached as a referrer, verifies like a .sig."""
    digest = setup.digests["1.5.0"]
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "cosign.pub"}, "tlogEntries": []},
        "dsseEnvelope": envelope(setup.key, statement(digest, SIGN, {})),
    }
    push_bundle(setup.registry, "acme/app", digest, json.dumps(bundle).encode())
    setup.policy("signatures: [{key: cosign.pub}]\n")
    code, out = setup.cli("apply")
    assert code == 0, out
    assert b"app:1.5.0" in show(setup.remote, "envs/dev/app.yaml")


def test_require_all_wants_every_signer(setup: Setup) -> None:
    """With require: all, an image signed by one of two trusted keys is refused, naming the
    missing signer; signed by both, it is taken."""
    release = new_key()
    (setup.policies / "release.pub").write_bytes(public_pem(release))
    setup.policy("require: all\nsignatures: [{key: cosign.pub}, {key: release.pub}]\n")
    setup.sign("1.5.0")
    setup.sign("1.4.0", also=release)
    reasons = verdicts(setup)
    assert reasons["1.5.0"] == "rejected: require all: no valid signature by key release.pub"
    assert reasons["1.4.0"].startswith("chosen:")

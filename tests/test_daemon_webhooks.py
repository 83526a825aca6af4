"""Webhook senders: each one's authentication and the pushes its documented payload names."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from imagebot.daemon.webhooks import SENDERS, BadPayload, Push, Request

SECRET = "s3cret"


def req(body: Any, headers: dict[str, str] | None = None, **query: str) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request(
        headers={k.lower(): v for k, v in (headers or {}).items()}, query=query, body=raw
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


DISTRIBUTION = {
    "events": [
        {
            "id": "1",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "a" * 64,
                "repository": "acme/app",
                "url": "https://registry.example.com/v2/acme/app/manifests/sha256:" + "a" * 64,
                "tag": "1.2.3",
            },
            "request": {"host": "registry.example.com", "method": "PUT"},
        },
        {
            "action": "pull",
            "target": {"repository": "acme/app", "tag": "1.2.3"},
            "request": {"host": "registry.example.com", "method": "GET"},
        },
        {
            "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "repository": "acme/app", "digest": "sha256:" + "b" * 64},
        },
    ]
}  # fmt: skip


def test_distribution_counts_tag_pushes_only() -> None:
    """Of a push, a pull and a push by digest, only the tag push is news."""
    sender = SENDERS["distribution"]
    r = req(DISTRIBUTION, {"Authorization": f"Bearer {SECRET}"})
    assert sender.authenticate(r, SECRET)
    assert sender.pushes(r) == [Push("registry.example.com/acme/app", "1.2.3")]


def test_distribution_registry_override() -> None:
    """?registry=HOST names the registry as policies spell it (behind a proxy or alias)."""
    r = req(DISTRIBUTION, registry="registry.internal:5000")
    assert SENDERS["distribution"].pushes(r) == [Push("registry.internal:5000/acme/app", "1.2.3")]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"bearer {SECRET}x", SECRET, f"Basic {SECRET}"]
)
def test_distribution_refuses_anything_but_the_bearer_secret(header: str | None) -> None:
    """A missing, wrong or differently spelt Authorization header is refused."""
    r = req(DISTRIBUTION, {"Authorization": header} if header else {})
    assert not SENDERS["distribution"].authenticate(r, SECRET)


def test_github_package_event_signed_with_hmac() -> None:
    """A GitHub `package` published event for a container names ghcr.io/<owner>/<name>."""
    body = json.dumps(
        {
            "action": "published",
            "package": {
                "name": "App",
                "namespace": "Acme",
                "package_type": "CONTAINER",
                "owner": {"login": "Acme"},
                "package_version": {
                    "container_metadata": {"tag": {"name": "1.2.3", "digest": "sha256:" + "c" * 64}}
                },
                "registry": {"url": "https://ghcr.io/acme/app", "type": "docker"},
            },
        }
    ).encode()
    sender = SENDERS["github"]
    good = req(body, {"X-GitHub-Event": "package", "X-Hub-Signature-256": sign(body)})
    assert sender.authenticate(good, SECRET)
    assert sender.pushes(good) == [Push("ghcr.io/acme/app", "1.2.3")]
    forged = req(body, {"X-GitHub-Event": "package", "X-Hub-Signature-256": sign(body, "x")})
    assert not sender.authenticate(forged, SECRET)
    ping = req(b'{"zen": "hi"}', {"X-GitHub-Event": "ping"})
    assert sender.pushes(ping) == []


def test_docker_hub_and_quay_use_a_url_token() -> None:
    """Docker Hub and Quay sign nothing: the secret is the ?token= of the webhook URL."""
    hub = req(
        {"push_data": {"tag": "1.25", "pusher": "acme"},
         "repository": {"repo_name": "acme/web", "namespace": "acme", "name": "web"}},
        token=SECRET,
    )  # fmt: skip
    assert SENDERS["dockerhub"].authenticate(hub, SECRET)
    assert SENDERS["dockerhub"].pushes(hub) == [Push("docker.io/acme/web", "1.25")]
    assert not SENDERS["dockerhub"].authenticate(req({}, token="nope"), SECRET)
    quay = req(
        {"repository": "acme/app", "namespace": "acme", "name": "app",
         "docker_url": "quay.io/acme/app", "updated_tags": ["1.0", "latest"]},
        token=SECRET,
    )  # fmt: skip
    assert SENDERS["quay"].authenticate(quay, SECRET)
    assert SENDERS["quay"].pushes(quay) == [
        Push("quay.io/acme/app", "1.0"),
        Push("quay.io/acme/app", "latest"),
    ]


def test_harbor_push_artifact() -> None:
    """Harbor's PUSH_ARTIFACT names the full reference in resource_url."""
    r = req(
        {"type": "PUSH_ARTIFACT", "occur_at": 1700000000, "operator": "admin",
         "event_data": {
             "resources": [{"digest": "sha256:" + "d" * 64, "tag": "2.0.1",
                            "resource_url": "harbor.example.com/library/app:2.0.1"}],
             "repository": {"name": "app", "namespace": "library",
                            "repo_full_name": "library/app", "repo_type": "private"}}},
        {"Authorization": f"Bearer {SECRET}"},
    )  # fmt: skip
    assert SENDERS["harbor"].authenticate(r, SECRET)
    assert SENDERS["harbor"].pushes(r) == [Push("harbor.example.com/library/app", "2.0.1")]
    pulled = req({"type": "PULL_ARTIFACT", "event_data": {"resources": []}})
    assert SENDERS["harbor"].pushes(pulled) == []


def test_gitlab_registry_notifications() -> None:
    """GitLab's registry sends Distribution envelopes; X-Gitlab-Token authenticates them."""
    r = req(DISTRIBUTION, {"X-Gitlab-Token": SECRET})
    assert SENDERS["gitlab"].authenticate(r, SECRET)
    assert SENDERS["gitlab"].pushes(r) == [Push("registry.example.com/acme/app", "1.2.3")]
    assert not SENDERS["gitlab"].authenticate(req(DISTRIBUTION, {"X-Gitlab-Token": "x"}), SECRET)


def test_generic_form_hmac_of_the_exact_body() -> None:
    """The generic form is signed over the exact body bytes; any other key or body fails."""
    body = b'{"repository": "nginx", "tag": "1.27.0"}'
    sender = SENDERS["generic"]
    assert sender.authenticate(req(body, {"X-Imagebot-Signature": sign(body)}), SECRET)
    assert sender.pushes(req(body)) == [Push("docker.io/library/nginx", "1.27.0")]
    assert not sender.authenticate(req(body + b" ", {"X-Imagebot-Signature": sign(body)}), SECRET)
    assert not sender.authenticate(req(body, {"X-Imagebot-Signature": sign(body)[7:]}), SECRET)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("generic", b"not json"),
        ("generic", b'{"repository": "nginx"}'),
        ("generic", b'{"repository": "Not A Repo!", "tag": "1"}'),
        ("distribution", b'{"events": 3}'),
        ("quay", b"{}"),
    ],
)
def test_malformed_payloads_are_bad_payload(name: str, body: bytes) -> None:
    """A body that is not the sender's shape raises BadPayload with what was expected."""
    with pytest.raises(BadPayload):
        SENDERS[name].pushes(req(body))

"""Who may read the status page and API, and what they never show: the daemon's own app
(Starlette, through httpx's ASGI transport) over records as a cycle leaves them."""

from __future__ import annotations

import base64
import html
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from imagebot import redact as secrets
from imagebot.core.plan import EnvironmentPlan
from imagebot.core.promotion.record import ImageRecord, Running
from imagebot.daemon.app import build_app
from imagebot.daemon.events import LastCycle
from imagebot.daemon.service import ServeOptions, Service
from imagebot.daemon.status_api import Access, StatusView
from imagebot.engine import EnvironmentResult
from imagebot.errors import ImagebotError
from tests.support.daemon import wait_for

SECRET_URL = "https://bot:tok3n-never-shown@git.example.com/acme/env.git"


def _service(tmp_path: Path, access: Access | None) -> Service:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        "environment: dev\nrepo: {url: https://git.example.com/acme/env.git, path: envs/dev}\n"
        "images:\n  - {name: app, repository: ghcr.io/acme/app}\n"
    )
    service = Service(ServeOptions(policies=policies, cache_dir=tmp_path, status_access=access))
    service.policies.load()
    record = ImageRecord(
        environment="dev",
        image="app",
        repository="ghcr.io/acme/app",
        upstream=None,
        running=Running("1.0.0", None, None, None),
        candidates=(),
        choice=None,
        waiting=None,
        errors=(f"dev: fetch {SECRET_URL} failed",),
    )
    now = datetime.now(UTC)
    service.decisions.last["dev"] = LastCycle(False, now, f"push to {SECRET_URL}", (record,))
    return service


def _get(service: Service, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://imagebot") as client:
            return await client.get(path, headers=headers or {})

    return anyio.run(run)


def test_basic_auth_from_a_file_guards_page_and_api(tmp_path: Path) -> None:
    """With a basic-auth file, the page and API answer 401 with a Basic challenge unless the
    request carries exactly that user and password."""
    secret = tmp_path / "status-auth"
    secret.write_text("viewer:s3cret-pass\n")
    service = _service(tmp_path, Access.from_files(None, secret))
    good = "Basic " + base64.b64encode(b"viewer:s3cret-pass").decode()
    wrong = "Basic " + base64.b64encode(b"viewer:guess").decode()
    for path in ("/", "/api/v1/status"):
        refused = _get(service, path)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="imagebot"'
        assert _get(service, path, {"Authorization": wrong}).status_code == 401
        assert _get(service, path, {"Authorization": good}).status_code == 200


def test_no_credential_is_ever_served(tmp_path: Path) -> None:
    """A URL with a token in an image's error or the cycle's problem reaches neither the API
    nor the page: the token is replaced, the rest of the words stay."""
    service = _service(tmp_path, None)
    for path in ("/", "/api/v1/status"):
        text = _get(service, path).text
        assert "tok3n-never-shown" not in text
        assert "git.example.com/acme/env.git" in text


def test_a_secret_imagebot_read_is_never_served_even_outside_a_url(tmp_path: Path) -> None:
    """A forge token imagebot read (and so knows as a secret) that a forge echoed into an
    image's error and the cycle's problem is masked in the API and the page, also where it
    holds a character JSON escapes."""
    token = secrets.remember('forge-"tok3n"-echoed-back')
    service = _service(tmp_path, None)
    last = service.decisions.last["dev"]
    record = replace(last.images[0], errors=(f"dev: the forge said: bad token {token}",))
    service.decisions.last["dev"] = replace(last, error=f"token {token} refused", images=(record,))
    for path in ("/", "/api/v1/status"):
        text = _get(service, path).text
        assert "tok3n" not in text
        assert "the forge said: bad token ***" in html.unescape(text)


@pytest.mark.parametrize(
    ("token", "basic", "content", "words"),
    [
        ("t", "b", "x", "not both"),
        (None, "b", "no-colon", "expected USER:PASSWORD"),
        ("t", None, "\n", "empty"),
    ],
)
def test_bad_access_files_are_errors_naming_the_option(
    tmp_path: Path, token: str | None, basic: str | None, content: str, words: str
) -> None:
    """Both options at once, a basic-auth file without USER:PASSWORD, or an empty file are
    refused with the option and file named."""
    paths = {}
    for name, given in (("token", token), ("basic", basic)):
        if given:
            paths[name] = tmp_path / name
            paths[name].write_text(content)
    with pytest.raises(ImagebotError, match=words):
        Access.from_files(paths.get("token"), paths.get("basic"))


def test_a_cycles_records_are_rendered_in_the_background(tmp_path: Path) -> None:
    """When a cycle records new decisions, they are rendered without any request asking
    (the renderer's thread), and the API then serves them."""
    service = _service(tmp_path, None)
    view = StatusView(service)
    assert b'"1.0.0"' in view.api(datetime.now(UTC))
    newer = ImageRecord("dev", "app", "ghcr.io/acme/app", None, Running("1.1.0", None, None, None),
                        candidates=(), choice=None, waiting=None)  # fmt: skip
    result = EnvironmentResult(EnvironmentPlan("dev", "dev.yaml"), images=(newer,))
    service.decisions.record("dev", True, datetime.now(UTC), None, result, 1.0)
    wait_for(
        lambda: view._rendered["dev"].last is service.last["dev"],
        timeout=30,
        what="the renderer to render dev's new records",
    )
    assert b'"1.1.0"' in view.api(datetime.now(UTC))

"""The status page and ``/api/v1/status`` of ``imagebot serve`` (a subprocess) over a real
registry, a real git remote and the GitHub fake, for a dev → staging → production pipeline:
dev moves, staging waits for soak, a human rollback holds a version, production's pull request
shows its number and then that a human closed it. The page is also loaded in headless
Chromium: text visible, every link reachable by keyboard, no serious axe-core violation."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import ROOT
from tests.support.daemon import Daemon, run_daemon, wait_for
from tests.support.forges import ForgeServer, run_forge
from tests.support.gitenv import make_remote, push_files
from tests.support.registry import Registry, push_image

SECRET = "whsec-status-page"
TOKEN = "ghp-status-page-never-shown"
STATUS_TOKEN = "status-token-7c1e"
NOW = datetime.now(UTC)
ARTIFACTS = Path(os.environ.get("IMAGEBOT_TEST_ARTIFACTS", ROOT / "test-artifacts"))

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: {name}
          image: {image}:{tag}
"""


@dataclass
class Pipeline:
    daemon: Daemon
    forge: ForgeServer
    app: str
    api: str
    remote: Path

    def status(self, **params: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {STATUS_TOKEN}"}
        reply = httpx.get(f"{self.daemon.url}/api/v1/status", params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        doc: dict[str, Any] = reply.json()
        return doc

    def push(self, tag: str, repository: str | None = None) -> int:
        """Tell the daemon (a signed generic webhook) that ``tag`` was pushed."""
        body = json.dumps({"repository": repository or self.app, "tag": tag}).encode()
        sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        reply = self.daemon.post("/webhooks/generic", body, {"X-Imagebot-Signature": sig})
        assert reply.status_code == 202, reply.text
        return len(reply.json()["environments"])

    def image(self, env: str, image: str) -> dict[str, Any]:
        envs = {e["name"]: e for e in self.status()["environments"]}
        return next(i for i in envs[env]["images"] if i["image"] == image)

    def page(self, query: str = "") -> str:
        headers = {"Authorization": f"Bearer {STATUS_TOKEN}"}
        reply = httpx.get(f"{self.daemon.url}/{query}", headers=headers)
        assert reply.status_code == 200, reply.text
        return reply.text


def _deploy(name: str, image: str, tag: str) -> bytes:
    return DEPLOY.format(name=name, image=image, tag=tag).encode()


def _policies(directory: Path, remote: Path, app: str, api: str, forge: str) -> None:
    directory.mkdir()
    repo = f'{{url: "file://{remote}", branch: main, path: envs/%s}}'
    (directory / "dev.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: dev
            repo: {repo % "dev"}
            schedule: {{every: 24h}}
            images:
              - {{name: app, repository: {app}}}
              - {{name: api, repository: {api}}}
            """
        )
    )
    (directory / "staging.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: staging
            repo: {repo % "staging"}
            schedule: {{every: 24h}}
            promote: {{from: dev, soak: 24h}}
            images: [{{name: app, repository: {app}}}]
            """
        )
    )
    (directory / "production.yaml").write_text(
        textwrap.dedent(
            f"""\
            environment: production
            repo: {repo % "production"}
            schedule: {{every: 24h}}
            promote: {{from: staging}}
            publish:
              mode: pull-request
              forge: {{type: github, url: {forge}, project: acme/environments,
                       token_env: FORGE_TOKEN}}
            images: [{{name: app, repository: {app}}}]
            """
        )
    )


@pytest.fixture(scope="module")
def pipeline(
    tmp_path_factory: pytest.TempPathFactory, shared_registry: Registry
) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("status-page")
    suffix = hashlib.sha1(str(tmp).encode()).hexdigest()[:8]
    app, api = (f"{shared_registry.host}/acme/{n}-{suffix}" for n in ("app", "api"))
    for tag in ("1.0.0", "1.1.0", "1.2.0"):
        push_image(shared_registry, app.split("/", 1)[1], tag)
    for tag in ("2.0.0", "2.1.0"):
        push_image(shared_registry, api.split("/", 1)[1], tag)
    remote = make_remote(
        tmp,
        {
            "envs/dev/app.yaml": _deploy("app", app, "1.0.0"),
            "envs/dev/api.yaml": _deploy("api", api, "2.0.0"),
            "envs/staging/app.yaml": _deploy("app", app, "1.0.0"),
            "envs/production/app.yaml": _deploy("app", app, "0.9.0"),
        },
        when=NOW - timedelta(days=10),
    )
    # imagebot moved dev's api to 2.1.0; a human moved it back: 2.1.0 is held in dev.
    push_files(
        remote,
        {"envs/dev/api.yaml": _deploy("api", api, "2.1.0")},
        message=f"imagebot(dev): api 2.1.0\n\nImagebot-Environment: dev\nImagebot-Image: {api}\n"
        "Imagebot-From: 2.0.0\nImagebot-To: 2.1.0\n",
        when=NOW - timedelta(days=5),
    )
    push_files(
        remote,
        {"envs/dev/api.yaml": _deploy("api", api, "2.0.0")},
        message="api 2.1.0 breaks logins",
        when=NOW - timedelta(days=4),
    )
    # dev has run 1.1.0 for an hour: staging's soak of a day has 23 hours left
    push_files(
        remote,
        {"envs/dev/app.yaml": _deploy("app", app, "1.1.0")},
        message="app 1.1.0",
        when=NOW - timedelta(hours=1),
    )
    token_file = tmp / "status-token"
    token_file.write_text(STATUS_TOKEN + "\n")
    with run_forge("github", remote, token=TOKEN) as forge:
        policies = tmp / "policies"
        _policies(policies, remote, app, api, forge.url)
        env = {"FORGE_TOKEN": TOKEN, "IMAGEBOT_WEBHOOK_SECRET": SECRET}
        with run_daemon(
            tmp,
            "--policies", str(policies),
            "--cache-dir", str(tmp / "cache"),
            "--status-token-file", str(token_file),
            env=env,
        ) as daemon:  # fmt: skip
            p = Pipeline(daemon, forge, app, api, remote)
            wait_for(
                lambda: all(e["last_cycle"] for e in p.status()["environments"]),
                timeout=60,
                what="a cycle of every environment",
            )
            # The cycle that opens a pull request learns its number from the next one.
            p.push("1.2.0")
            wait_for(
                lambda: p.image("production", "app")["pull_request"] is not None,
                timeout=60,
                what="production's pull request",
            )
            yield p
            assert TOKEN not in daemon.log_text()


def test_api_renders_the_decision_records_in_pipeline_order(pipeline: Pipeline) -> None:
    """The API lists dev, staging, production in pipeline order with their upstreams, and per
    image what runs, what waits for which gate with time left, holds and the pull request."""
    doc = pipeline.status()
    assert doc["api_version"] == "v1"
    envs = doc["environments"]
    assert [(e["name"], e["upstream"]) for e in envs] == [
        ("dev", None),
        ("staging", "dev"),
        ("production", "staging"),
    ]
    assert all(e["last_cycle"]["result"] == "ok" for e in envs), envs
    assert all(e["next_cycle"] > doc["generated_at"] for e in envs)
    dev_app = pipeline.image("dev", "app")
    assert dev_app["running"]["tag"] == "1.2.0" and dev_app["state"] == "up-to-date", dev_app
    staging = pipeline.image("staging", "app")
    assert staging["running"]["tag"] == "1.0.0"
    assert staging["state"] == "waiting" and staging["waiting"]["gate"] == "soak"
    opens = datetime.fromisoformat(staging["waiting"]["until"])
    left = (opens - datetime.fromisoformat(doc["generated_at"])).total_seconds()
    assert 22 * 3600 < left <= 24 * 3600, staging["waiting"]
    api = pipeline.image("dev", "api")
    assert api["state"] == "held"
    (hold,) = api["holds"]
    assert hold["version"] == "2.1.0" and hold["author"].startswith("Test Human")
    assert hold["lift"] == "imagebot release dev api"
    production = pipeline.image("production", "app")
    assert production["pull_request"]["number"] == 1
    assert production["pull_request"]["state"] == "open"
    assert production["waiting"]["gate"] == "approval"
    assert production["commands"]["promote"] == "imagebot promote production app"
    events = {(e["environment"], e["image"], e["event"]) for e in doc["events"]}
    assert {("dev", "app", "promoted"), ("dev", "api", "held"), ("staging", "app", "waiting")} <= (
        events
    ), events


def test_page_shows_the_same_records(pipeline: Pipeline) -> None:
    """The page, rendered from the same context, shows each environment's version, the
    soak with time left, the hold with how to lift it, and the pull request's number."""
    html = pipeline.page()
    assert (
        '<th scope="col">dev</th><th scope="col">staging</th><th scope="col">production</th>'
        in html
    )
    assert re.search(r"waits for soak, 2[23]h(\d+m)?(\d+s)? left", html), html
    assert "holds 2.1.0 (Test Human" in html
    assert "<code>imagebot release dev api</code>" in html
    assert "PR #1 open" in html
    assert STATUS_TOKEN not in html and TOKEN not in html


def test_filters_apply_to_page_and_api_alike(pipeline: Pipeline) -> None:
    """Filtering by environment, state or search narrows the API and the page the same way."""
    doc = pipeline.status(environment="dev", q="api")
    assert [e["name"] for e in doc["environments"]] == ["dev"]
    assert [i["image"] for i in doc["environments"][0]["images"]] == ["api"]
    html = pipeline.page("?environment=dev&q=api")
    assert '<th scope="row">api</th>' in html and '<th scope="row">app</th>' not in html
    held = pipeline.status(state="held")
    assert [(e["name"], len(e["images"])) for e in held["environments"]] == [
        ("dev", 1),
        ("staging", 0),
        ("production", 0),
    ]


def test_page_and_api_demand_the_token(pipeline: Pipeline) -> None:
    """With a token file, both answer 401 without the bearer token and with a wrong one;
    health and metrics stay open."""
    for path in ("/", "/api/v1/status"):
        assert pipeline.daemon.get(path).status_code == 401
        wrong = httpx.get(pipeline.daemon.url + path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert pipeline.daemon.get("/healthz").status_code == 200


def test_metrics_show_waiting_held_and_last_cycle(pipeline: Pipeline) -> None:
    """/metrics has the waiting and held gauges and each environment's last cycle."""
    text = pipeline.daemon.get("/metrics").text
    assert 'imagebot_waiting{environment="staging",gate="soak",image="app"} 1.0' in text
    assert 'imagebot_held{environment="dev",image="api"} 1.0' in text
    for env in ("dev", "staging", "production"):
        assert f'imagebot_last_cycle_success{{environment="{env}"}} 1.0' in text
        assert f'imagebot_last_cycle_timestamp_seconds{{environment="{env}"}}' in text


def test_a_closed_pull_request_shows_closed(pipeline: Pipeline) -> None:
    """A human closes production's pull request; after the next cycle the API and the page
    say it was closed, and an ignored webhook (a repository nobody watches) is counted so."""
    pipeline.forge.close_by_human(1)
    assert pipeline.push("1.1.0") == 3
    wait_for(
        lambda: (
            (pipeline.image("production", "app")["pull_request"] or {}).get("state") == "closed"
        ),
        timeout=60,
        what="production's pull request to show closed",
    )
    assert "PR #1 closed" in pipeline.page()
    # Closed unmerged: not proposed again, so production waits for no approval.
    waiting = pipeline.image("production", "app")["waiting"] or {}
    assert waiting.get("gate") == "declined", waiting
    assert "declined: not proposed again" in pipeline.page()
    assert pipeline.push("1", "example.com/nobody/watches") == 0
    text = pipeline.daemon.get("/metrics").text
    assert 'imagebot_webhooks_total{outcome="ignored",sender="generic"} 1.0' in text
    assert 'imagebot_webhooks_total{outcome="accepted",sender="generic"} 2.0' in text


def test_status_page_off_serves_neither(tmp_path: Path) -> None:
    """``--status-page off`` removes the page and the API; the daemon still serves health."""
    policies = tmp_path / "policies"
    policies.mkdir()
    with run_daemon(tmp_path, "--policies", str(policies), "--status-page", "off") as daemon:
        assert daemon.get("/").status_code == 404
        assert daemon.get("/api/v1/status").status_code == 404
        assert daemon.get("/healthz").status_code == 200


def _axe_source() -> str:
    """axe-core as scripts/setup.sh installs it from npm (or $AXE_CORE_JS)."""
    path = Path(
        os.environ.get("AXE_CORE_JS") or ROOT / ".venv/node/node_modules/axe-core/axe.min.js"
    )
    assert path.is_file(), f"{path}: axe-core is missing; run scripts/setup.sh"
    return path.read_text()


def test_page_in_headless_chromium(pipeline: Pipeline) -> None:
    """In headless Chromium the page shows its text, Tab reaches every link, axe-core finds
    no serious or critical violation, and a full-page screenshot is saved."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    driver_path = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    for binary in (chromium, driver_path):
        assert Path(binary).is_file(), f"{binary} is missing; run scripts/setup.sh"
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(driver_path))
    try:
        # The browser sends the bearer token the way an ingress with auth would.
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders",
            {"headers": {"Authorization": f"Bearer {STATUS_TOKEN}"}},
        )
        driver.get(pipeline.daemon.url + "/")
        body = driver.find_element(By.TAG_NAME, "body").text
        for text in ("imagebot status", "waits for soak", "holds 2.1.0", "PR #1", "Recent events"):
            assert text in body, body
        links = {a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[href]")}
        focused = set()
        page = driver.find_element(By.TAG_NAME, "body")
        for _ in range(
            len(driver.find_elements(By.CSS_SELECTOR, "a,summary,input,select,button")) + 2
        ):
            page.send_keys(Keys.TAB)
            active = driver.switch_to.active_element
            if active.tag_name == "a":
                focused.add(active.get_attribute("href"))
        assert links <= focused, links - focused
        driver.execute_script(_axe_source())
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done(r.violations), e => done(String(e)));"
        )
        assert isinstance(result, list), result
        serious = [
            (v["id"], v["impact"], v["help"])
            for v in result
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == [], serious
        driver.execute_script("document.activeElement.blur()")
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(height, 900))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "status-page.png"
        assert driver.save_screenshot(str(shot)), shot
        assert shot.stat().st_size > 10_000
    finally:
        driver.quit()

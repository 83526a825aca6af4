"""charts/imagebot: Chart.yaml is valid, values (and override files) validate against the
schema, every kind the chart claims is in a template, and the Dockerfile agrees with it."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import imagebot
from imagebot.core.policy_file import parse_policy

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "imagebot"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of -f values over the chart's: maps deep, everything else replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(doc)
    return doc


def test_chart_yaml_is_a_valid_v2_application_chart() -> None:
    """Chart.yaml has the fields Helm 3 requires, a SemVer version, and the app's version."""
    chart = load(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name
    assert chart["type"] == "application"
    assert SEMVER.match(chart["version"])
    assert chart["appVersion"] == imagebot.__version__
    assert chart["description"]


def test_default_values_validate() -> None:
    """values.yaml validates against values.schema.json."""
    jsonschema.validate(load(CHART / "values.yaml"), schema())


@pytest.mark.parametrize("name", sorted(p.name for p in (CHART / "ci").glob("*-values.yaml")))
def test_override_files_validate(name: str) -> None:
    """Each ci/*-values.yaml, merged over values.yaml as Helm does, validates."""
    values = merged(load(CHART / "values.yaml"), load(CHART / "ci" / name))
    jsonschema.validate(values, schema())


@pytest.mark.parametrize(
    ("override", "why"),
    [
        ({"replicaCount": 2}, "two writers without leader election"),
        ({"replicaCount": "two"}, "wrong type"),
        ({"replicas": 1}, "misspelt key"),
        ({"image": {"pullPolicy": "Sometimes"}}, "not a pull policy"),
        ({"policies": {"dev.json": "{}"}}, "a policy file name must be *.yaml"),
        ({"secrets": {"webhook": {"name": "x", "key": ""}}}, "empty Secret key"),
        ({"resources": {"requests": {"memory": "lots"}}}, "not a quantity"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "not a duration"),
    ],
)
def test_schema_refuses_mistakes(override: dict[str, Any], why: str) -> None:
    """The schema catches the mistakes Helm should refuse before applying anything."""
    values = merged(load(CHART / "values.yaml"), override)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, schema())


def _claimed_kinds() -> set[str]:
    text = (ROOT / "charts" / "README.md").read_text()
    section = text[text.index("## What it creates") :]
    section = section[: section.index("\n## ", 1)]
    return set(re.findall(r"^\| (\w+) \|", section, flags=re.M)) - {"kind"}


def _template_kinds() -> set[str]:
    kinds = set()
    for path in (CHART / "templates").glob("*.yaml"):
        kinds.update(re.findall(r"^kind: (\w+)$", path.read_text(), flags=re.M))
    return kinds


def test_every_claimed_kind_has_a_template_and_every_template_is_claimed() -> None:
    """The kinds charts/README.md lists are exactly the kinds the templates render."""
    claimed = _claimed_kinds()
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Ingress",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "NetworkPolicy",
    } <= claimed
    assert claimed == _template_kinds()


def test_deployment_is_locked_down_and_probed() -> None:
    """Defaults: non-root, read-only root, no capabilities, requests, probes on the endpoints;
    the template uses each of them."""
    values = load(CHART / "values.yaml")
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["resources"]["requests"]["cpu"] and values["resources"]["requests"]["memory"]
    assert values["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert values["readinessProbe"]["httpGet"]["path"] == "/readyz"
    template = (CHART / "templates" / "deployment.yaml").read_text()
    for key in (
        "podSecurityContext",
        "securityContext",
        "resources",
        "livenessProbe",
        "readinessProbe",
        "shutdownGraceSeconds",
        "terminationGracePeriodSeconds",
    ):
        assert f".Values.{key}" in template, key
    assert values["shutdownGraceSeconds"] < values["terminationGracePeriodSeconds"]


def test_policies_in_the_examples_are_valid_policy_files() -> None:
    """Policies given in override files are policies imagebot accepts."""
    for path in (CHART / "ci").glob("*-values.yaml"):
        for name, text in (load(path).get("policies") or {}).items():
            parse_policy(text, source=f"{path.name}:{name}")


def test_dockerfile_runs_as_the_charts_user_with_git() -> None:
    """The image's numeric USER is the chart's runAsUser; git is installed; the writable
    paths are the volumes the chart mounts."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    values = load(CHART / "values.yaml")
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, flags=re.M)
    assert user is not None
    assert int(user[1]) == values["podSecurityContext"]["runAsUser"] != 0
    assert re.search(r"apt-get install .*\bgit\b", dockerfile)
    template = (CHART / "templates" / "deployment.yaml").read_text()
    for path in ("/var/cache/imagebot", "/tmp"):
        assert path in dockerfile and f"mountPath: {path}" in template
    docs = (ROOT / "docs" / "daemon.md").read_text()
    for choice in ("**Base:", "**User 10001:10001**", "**Read-only root filesystem.**"):
        assert choice in docs


def test_kubernetes_api_token_is_mounted_only_for_leases() -> None:
    """The pod mounts no service account token by default; leader election or shards turn
    it on."""
    values = load(CHART / "values.yaml")
    assert values["serviceAccount"]["automount"] is False
    assert values["leaderElection"]["enabled"] is False and values["shards"] == 0
    template = (CHART / "templates" / "deployment.yaml").read_text()
    leases = "{{- $leases := or .Values.leaderElection.enabled (gt (int .Values.shards) 0) }}"
    assert leases in template
    assert "automountServiceAccountToken: {{ or .Values.serviceAccount.automount $leases }}" in (
        template
    )


def test_every_flag_the_chart_passes_is_one_serve_accepts() -> None:
    """Each --flag in the Deployment's args (shards, lease, policies from git) is an option
    of `imagebot serve`, so the chart cannot drift from the command line."""
    from imagebot.cli.main import build_parser

    template = (CHART / "templates" / "deployment.yaml").read_text()
    flags = set(re.findall(r"^\s+- (--[a-z-]+)", template, flags=re.M))
    assert {"--shards", "--lease-duration", "--leader-elect", "--reload-interval"} <= flags
    parser = build_parser("serve")
    serve = next(
        a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith("serve")
    )
    known = {o for action in serve._actions for o in action.option_strings}
    assert flags <= known, flags - known


def test_secrets_reach_the_pod_as_files_not_environment_variables() -> None:
    """No Secret becomes an environment variable (git, ssh and gpg children would inherit
    it): the webhook secret, URL token and forge tokens are mounted files imagebot reads."""
    template = (CHART / "templates" / "deployment.yaml").read_text()
    assert "secretKeyRef" not in template and "envFrom" not in template
    assert (
        "IMAGEBOT_WEBHOOK_SECRET_FILE\n              value: /var/run/secrets/imagebot/webhook/"
        in (template)
    )
    assert "IMAGEBOT_WEBHOOK_URL_TOKEN_FILE" in template
    for volume, path in (("webhook-secret", "webhook"), ("forge-tokens", "forge")):
        assert f"- name: {volume}\n              mountPath: /var/run/secrets/imagebot/{path}" in (
            template
        )
    values = load(CHART / "values.yaml")
    assert set(values["secrets"]["webhook"]) == {"name", "key", "urlTokenKey"}


def test_network_policy_limits_egress_to_dns_and_the_configured_ports() -> None:
    """With the NetworkPolicy on, egress is DNS (53 UDP and TCP) plus egressPorts (443 and
    22 by default), each rendered as a TCP port."""
    values = load(CHART / "values.yaml")
    assert values["networkPolicy"]["egressPorts"] == [443, 22]
    template = (CHART / "templates" / "networkpolicy.yaml").read_text()
    assert "policyTypes: [Ingress, Egress]" in template
    egress = template[template.index("  egress:") :]
    assert "- port: 53\n          protocol: UDP" in egress
    assert "- port: 53\n          protocol: TCP" in egress
    assert "{{- range . }}\n        - port: {{ . }}\n          protocol: TCP" in egress
    with pytest.raises(jsonschema.ValidationError):
        override = {"networkPolicy": {"egressPorts": [70000]}}
        jsonschema.validate(merged(values, override), schema())


def test_dockerfile_pins_the_base_by_digest_and_dependencies_by_constraints() -> None:
    """Both build stages start FROM one base pinned by sha256 digest (the runtime image from
    scratch), and pip installs with constraints.txt, which pins every dependency of
    pyproject.toml (and not imagebot)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$", dockerfile, re.M)
    assert base is not None
    assert re.findall(r"^FROM (\S+)", dockerfile, flags=re.M) == ["${BASE}", "${BASE}", "scratch"]
    assert "pip install --constraint /src/constraints.txt /src" in dockerfile
    pins = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    project = (ROOT / "pyproject.toml").read_text()
    deps = project[
        project.index("dependencies = [") : project.index("]", project.index("dependencies = ["))
    ]
    wanted = {
        m.lower().replace("_", "-") for m in re.findall(r'^\s+"([A-Za-z0-9_.-]+)', deps, re.M)
    }
    assert wanted and wanted <= pins, wanted - pins
    assert "imagebot" not in pins


def test_values_examples_in_the_chart_readme_validate() -> None:
    """Each values example in charts/README.md, merged over values.yaml, validates (the
    policy-file fragment there is a policy's, checked by the docs tests' rules)."""
    text = (ROOT / "charts" / "README.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]
    overrides = [b for b in blocks if "publish" not in b]
    assert any("policiesFromGit" in b for b in overrides)
    for override in overrides:
        jsonschema.validate(merged(load(CHART / "values.yaml"), override), schema())


def test_example_alerts_fire_on_what_the_daemon_exports() -> None:
    """Each example alert's selector matches a sample the daemon's metrics expose when the
    condition holds: a failed last cycle, an image waiting on checks."""
    from datetime import UTC, datetime

    from imagebot.core.promotion.record import ImageRecord, Running
    from imagebot.core.selection import Rejection
    from imagebot.daemon.metrics import Metrics

    waiting = ImageRecord(
        environment="production",
        image="app",
        repository="ghcr.io/acme/app",
        upstream="staging",
        running=Running("1.0.0", None, None, None),
        candidates=(),
        choice=None,
        waiting=Rejection("checks", "on staging@abc: ci=failure"),
    )
    metrics = Metrics()
    metrics.show_decisions({"production": (False, datetime.now(UTC), [waiting])})
    text = metrics.exposition().decode()
    rule = (CHART / "templates" / "prometheusrule.yaml").read_text()
    exprs = re.findall(r"expr: (\w+)(\{[^}]*\})? == (\d)", rule)
    assert len(exprs) == 2, rule
    for name, selector, value in exprs:
        wanted = dict(re.findall(r'(\w+)="([^"]*)"', selector))
        samples = re.findall(rf"^{name}\{{([^}}]*)\}} ([\d.]+)$", text, flags=re.M)
        assert any(
            wanted.items() <= dict(re.findall(r'(\w+)="([^"]*)"', labels)).items()
            and float(got) == float(value)
            for labels, got in samples
        ), (name, selector, text)

"""Renovate's docker rules → one policy file for the repository Renovate watches.

Renovate finds images itself and applies ``packageRules`` to each; so does this converter:
every image reference imagebot locates in the directory becomes an image policy, shaped by
the rules that match it (``matchDatasources`` docker, ``matchPackageNames``/``DepNames``/
``Patterns``/``Prefixes``, ``matchManagers``) — ``allowedVersions``, ``versioning``,
``ignoreUnstable``, ``pinDigests``, ``enabled`` and ``matchUpdateTypes``.
Options: https://docs.renovatebot.com/configuration-options/
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import json5

from imagebot.core.reference import familiar_repository
from imagebot.core.rewrite import locate
from imagebot.core.rewrite.scalars import split_reference
from imagebot.errors import EditError
from imagebot.migrate.model import EnvironmentOut, Field, ImageOut, Migration, policy_name, unique
from imagebot.migrate.ranges import valid_range

CONFIG_FILES = (
    "renovate.json",
    "renovate.json5",
    ".github/renovate.json",
    ".github/renovate.json5",
    ".gitlab/renovate.json",
    ".gitlab/renovate.json5",
    ".renovaterc",
    ".renovaterc.json",
    ".renovaterc.json5",
)
#: imagebot's file kinds → the Renovate managers that read the same fields.
MANAGERS = {
    "workload": {"kubernetes"},
    "helm-values": {"helm-values", "helmv3"},
    "helmrelease": {"flux"},
    "kustomization": {"kustomize", "flux"},
    "compose": {"docker-compose"},
    "argocd-application": {"argocd"},
    "argocd-source": {"argocd"},
    "marker": {"regex", "custom.regex"},
    "flux-setter": {"flux", "regex"},
}
#: Matchers this converter evaluates; any other ``match*`` key is reported, not evaluated.
_EVALUATED = frozenset(
    (
        "matchDatasources",
        "matchManagers",
        "matchPackageNames",
        "matchDepNames",
        "matchPackagePatterns",
        "matchPackagePrefixes",
        "excludePackageNames",
        "excludePackagePatterns",
        "matchUpdateTypes",
    )
)
_UPDATE_LIMITS = (({"major", "minor"}, "patch"), ({"major"}, "minor"))


@dataclass
class Dependency:
    """One image as Renovate would extract it."""

    name: str
    """As written in the files (``nginx``, ``ghcr.io/acme/app``)."""
    repository: str
    managers: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)


@dataclass
class Rules:
    """What the matching rules say about one dependency."""

    enabled: bool = True
    allowed: str | None = None
    versioning: str = "docker"
    unstable: bool = False
    pin: bool = False
    allow: str | None = None
    allow_why: str = "updates of larger types were disabled."
    unevaluated: list[str] = field(default_factory=list)


def convert(files: Mapping[str, str], *, repo_url: str | None) -> Migration:
    out = Migration(tool="renovate")
    config = _config(files, out.warnings)
    if config is None:
        return out
    deps = _dependencies(files, out.warnings)
    ignored = {str(d) for d in config.get("ignoreDeps") or []}
    rules = [r for r in config.get("packageRules") or [] if isinstance(r, dict)]
    images: list[ImageOut] = []
    names: set[str] = set()
    for dep in deps.values():
        if dep.name in ignored or dep.repository in ignored:
            out.warnings.append(f"{dep.name}: in ignoreDeps; not converted")
            continue
        settings = _settings(config, rules, dep)
        if not settings.enabled:
            out.warnings.append(f"{dep.name}: disabled by a packageRule; not converted")
            continue
        images.append(_image(dep, settings, names, out.warnings))
    if not images:
        out.warnings.append("no image reference found that Renovate would update")
        return out
    base = (repo_url or "renovate").rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    branches = config.get("baseBranches") or []
    env = EnvironmentOut(
        name=policy_name(base),
        origin="the Renovate configuration and the image references of the directory",
        repo=[
            Field(
                "url",
                repo_url or "REPLACE-ME-git-url-of-this-repository",
                None if repo_url else "The directory is not a git checkout: put its URL here.",
            ),
            Field(
                "branch",
                str(branches[0]) if branches else "main",
                "Renovate's baseBranches." if branches else None,
            ),
        ],
        images=images,
        notes=[
            "Renovate proposed each update as a pull request; imagebot commits each change"
            " (see publish in docs/policies.md). Dockerfiles are not edited by imagebot."
        ],
    )
    out.environments.append(env)
    return out


def _config(files: Mapping[str, str], warnings: list[str]) -> dict[str, Any] | None:
    for path in CONFIG_FILES:
        if path in files:
            try:
                # JSON is JSON5; .renovaterc may be either.
                data = json5.loads(files[path])
            except ValueError as exc:
                warnings.append(f"{path}: not JSON5 ({exc})")
                return None
            if isinstance(data, dict):
                return data
            warnings.append(f"{path}: not a JSON object")
            return None
    if "package.json" in files:
        try:
            data = json.loads(files["package.json"]).get("renovate")
        except (json.JSONDecodeError, AttributeError):
            data = None
        if isinstance(data, dict):
            return data
    warnings.append(f"no Renovate configuration ({', '.join(CONFIG_FILES)}) found")
    return None


def _dependencies(files: Mapping[str, str], warnings: list[str]) -> dict[str, Dependency]:
    deps: dict[str, Dependency] = {}
    for path in sorted(files):
        if not path.endswith((".yaml", ".yml")) and path.rsplit("/", 1)[-1] != "Kustomization":
            continue
        try:
            targets = locate(files[path], source=path)
        except EditError as exc:
            warnings.append(f"{exc}; skipped")
            continue
        for target in targets:
            if target.repository is None or target.problem:
                continue
            dep = deps.get(target.repository)
            if dep is None:
                ref = target.slot("ref")
                # Renovate's package name is the image as written (nginx, not docker.io/…).
                name = split_reference(ref.value[len(ref.alias) :])[0] if ref else ""
                name = name or familiar_repository(target.repository)
                dep = deps[target.repository] = Dependency(name, target.repository)
            dep.managers |= MANAGERS.get(target.kind, set())
            dep.files.add(path)
    return deps


def _name_matches(pattern: str, name: str) -> bool:
    if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
        return re.search(pattern[1:-1], name) is not None
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern == name


def _listed(rule: dict[str, Any], key: str) -> list[str]:
    value = rule.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []


def _matches(rule: dict[str, Any], dep: Dependency) -> bool:
    names = {dep.name, familiar_repository(dep.repository), dep.repository}
    datasources = _listed(rule, "matchDatasources")
    if datasources and "docker" not in datasources:
        return False
    managers = _listed(rule, "matchManagers")
    if managers and not dep.managers.intersection(managers):
        return False
    packages = _listed(rule, "matchPackageNames") + _listed(rule, "matchDepNames")
    positive = [p for p in packages if not p.startswith("!")]
    if positive and not any(_name_matches(p, n) for p in positive for n in names):
        return False
    if any(_name_matches(p[1:], n) for p in packages if p.startswith("!") for n in names):
        return False
    patterns = _listed(rule, "matchPackagePatterns")
    if patterns and not any(re.search(p, n) for p in patterns for n in names):
        return False
    prefixes = _listed(rule, "matchPackagePrefixes")
    if prefixes and not any(n.startswith(p) for p in prefixes for n in names):
        return False
    if any(n in _listed(rule, "excludePackageNames") for n in names):
        return False
    excluded = _listed(rule, "excludePackagePatterns")
    return not any(re.search(p, n) for p in excluded for n in names)


def _apply(rule: dict[str, Any], s: Rules) -> None:
    types = set(_listed(rule, "matchUpdateTypes"))
    if rule.get("enabled") is False:
        if not types:
            s.enabled = False
        for blocked, allow in _UPDATE_LIMITS:
            if blocked <= types:
                s.allow = allow
                s.allow_why = "updates of larger types were disabled."
                break
        return
    if rule.get("enabled") is True and "major" in types:
        s.allow = None  # major updates switched back on
    if types:
        return  # other settings for some update types only (automerge, labels…)
    if "allowedVersions" in rule:
        s.allowed = str(rule["allowedVersions"])
    if "versioning" in rule:
        s.versioning = str(rule["versioning"])
    if "ignoreUnstable" in rule:
        s.unstable = not rule["ignoreUnstable"]
    if "pinDigests" in rule:
        s.pin = bool(rule["pinDigests"])


def _settings(config: dict[str, Any], rules: list[dict[str, Any]], dep: Dependency) -> Rules:
    s = Rules()
    # "By default, Renovate will upgrade minor and patch versions […] but not major
    # versions" of Docker images, unless the preset docker:enableMajor is extended
    # (https://docs.renovatebot.com/docker/#version-upgrading).
    if "docker:enableMajor" not in (config.get("extends") or []):
        s.allow = "minor"
        s.allow_why = "Renovate's docker default: no major updates without docker:enableMajor."
    _apply({k: v for k, v in config.items() if k != "packageRules"}, s)
    for rule in rules:
        if _matches(rule, dep):
            _apply(rule, s)
            s.unevaluated.extend(
                k for k in rule if k.startswith(("match", "exclude")) and k not in _EVALUATED
            )
    return s


def _image(dep: Dependency, s: Rules, names: set[str], warnings: list[str]) -> ImageOut:
    label = dep.name.rsplit("/", 1)[-1].split(":")[0]
    fields = [
        Field("name", unique(policy_name(label), names)),
        Field("repository", familiar_repository(dep.repository)),
        Field("strategy", "semver"),
    ]
    tags: list[Field] = []
    versioning = s.versioning
    if versioning == "docker":
        fields[2].comment = (
            "Renovate's docker versioning: a tag keeps its precision (1.2 moves to 1.3,"
            " keep_precision) and its suffix (-alpine, variant: match), imagebot's defaults."
        )
    elif versioning == "semver":
        fields.append(Field("keep_precision", False, "versioning semver: full versions only."))
    if versioning.startswith("regex:"):
        pattern = versioning.removeprefix("regex:")
        groups = [g for g in ("major", "minor", "patch") if f"(?<{g}>" in pattern]
        tags.append(
            Field(
                "include",
                pattern,
                "Renovate regex versioning: the tags that match, ordered by"
                " major.minor.patch; a compatibility group must match the running tag's.",
            )
        )
        if groups:
            tags.append(Field("extract", ".".join(f"${g}" for g in groups)))
    elif versioning not in ("docker", "semver", "semver-coerced", "loose"):
        fields[2].comment = f"Renovate versioning {versioning} read as docker/semver versions."
    if s.allowed:
        allowed = s.allowed
        if allowed.startswith("!/") and allowed.endswith("/"):
            tags.append(Field("exclude", [allowed[2:-1]], "allowedVersions negated regex."))
        elif allowed.startswith("/") and allowed.endswith("/"):
            tags.append(Field("include", allowed[1:-1], "allowedVersions regex."))
        elif (problem := valid_range(allowed)) is None:
            fields.append(Field("range", allowed, "allowedVersions."))
        else:
            warnings.append(f"{dep.name}: allowedVersions {allowed!r} not converted ({problem})")
    if s.unstable:
        fields.append(Field("prerelease", True, "ignoreUnstable: false."))
    if s.allow:
        fields.append(Field("allow", s.allow, s.allow_why))
    if s.pin:
        fields.append(Field("digest", "pin", "pinDigests."))
    if tags:
        fields.append(Field("tags", _merge_tags(tags)))
    if s.unevaluated:
        fields[0].comment = (
            "Matchers not evaluated by the conversion (the rule was applied): "
            + ", ".join(sorted(set(s.unevaluated)))
            + "."
        )
    files = ", ".join(sorted(dep.files))
    return ImageOut(origin=f"{dep.name} in {files}", fields=fields)


def _merge_tags(tags: list[Field]) -> list[Field]:
    """One ``include`` (a regex versioning's and allowedVersions' both apply: joined as
    lookaheads) and one ``exclude`` list."""
    # The include holding named groups goes last, so extract reads its groups.
    includes = sorted((t for t in tags if t.key == "include"), key=lambda t: "(?P<" in str(t.value))
    merged = [t for t in tags if t.key not in ("include", "exclude")]
    if len(includes) == 1:
        merged.insert(0, includes[0])
    elif includes:
        joined = "".join(f"(?={t.value})" for t in includes[:-1]) + str(includes[-1].value)
        merged.insert(0, Field("include", joined, " ".join(t.comment or "" for t in includes)))
    excludes = [str(v) for t in tags if t.key == "exclude" for v in t.value]  # type: ignore[union-attr]
    if excludes:
        merged.append(Field("exclude", excludes))
    return merged

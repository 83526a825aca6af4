"""Argo CD Image Updater → policy files.

Two spellings of the same settings are read: ``argocd-image-updater.argoproj.io/*``
annotations on an Argo CD ``Application`` (https://argocd-image-updater.readthedocs.io/en/
stable/configuration/images/) and the ``ImageUpdater`` resource whose ``applicationRefs``
select Applications by name pattern. Each Application becomes an environment whose repo is
its git source (``repoURL``, ``targetRevision``, ``path``), where imagebot edits the image
fields themselves (kustomize images, Helm values, ``.argocd-source-<app>.yaml``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from imagebot.core.reference import parse
from imagebot.core.selection import ignore_entry_kind
from imagebot.errors import InvalidReference
from imagebot.migrate.model import EnvironmentOut, Field, ImageOut, Migration, policy_name, unique
from imagebot.migrate.ranges import range_fields
from imagebot.migrate.sources import Document, documents, mapping

PREFIX = "argocd-image-updater.argoproj.io/"
CRD_GROUP = "argocd-image-updater.argoproj.io"
STRATEGIES = {
    "semver": "semver",
    "latest": "newest-build",
    "newest-build": "newest-build",
    "name": "lexical",
    "alphabetical": "lexical",
    "digest": "digest",
}


@dataclass
class Settings:
    """One image's update settings, from annotations or an ImageUpdater."""

    strategy: str = "semver"
    allow_tags: str | None = None
    ignore_tags: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    """Settings with no equivalent, as ``name=value`` for a comment."""


@dataclass
class ImageSpec:
    alias: str
    image: str
    constraint: str
    settings: Settings


def convert(files: Mapping[str, str]) -> Migration:
    out = Migration(tool="argocd-image-updater")
    docs = list(documents(files, out.warnings))
    apps = [d for d in docs if d.group == "argoproj.io" and d.kind == "Application"]
    updaters = [d for d in docs if d.group == CRD_GROUP and d.kind == "ImageUpdater"]
    taken: set[str] = set()
    for app in apps:
        images = _from_annotations(app, out.warnings)
        write_back: dict[str, Any] = {}
        for updater in updaters:
            selected = _from_updater(updater, app, out.warnings)
            if selected:
                images.extend(selected)
                write_back = write_back or mapping(updater.spec.get("writeBackConfig"))
        if not images:
            continue
        env = _environment(app, images, out.warnings, taken, write_back)
        if env is not None:
            out.environments.append(env)
    if not out.environments:
        out.warnings.append(
            "no Application with argocd-image-updater.argoproj.io/image-list annotations,"
            " and no ImageUpdater selecting one, found"
        )
    return out


def split_image(text: str) -> tuple[str, str, str]:
    """``alias=repo:constraint`` → (alias, repo, constraint); the constraint is what follows
    the last ``:`` after the last ``/`` (a range, or the tag the digest strategy follows)."""
    alias, _, rest = text.strip().rpartition("=")
    rest = rest.partition("@")[0]  # a pinned digest says nothing about what to choose
    name, colon, constraint = rest.rpartition(":")
    if not colon or "/" in constraint:
        name, constraint = rest, ""
    return alias.strip(), name.strip(), constraint.strip()


def _glob_regex(pattern: str) -> str:
    """An ignore-tags glob (Go's ``filepath.Match``: ``*``, ``?``, ``[...]``) as an anchored
    regex, written with nothing beyond what every regex dialect reads."""
    out = ["^"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out.append("[^" + body[1:] + "]" if body.startswith("^") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


def _exact_ignore(glob: str, strategy: str) -> bool:
    """Whether imagebot's ``ignore`` reads the updater's ignore-tags glob exactly as Go's
    ``filepath.Match`` does: as a glob or a tag (not a semver range), without character
    classes or escapes (Go negates ``[^…]``, Python's fnmatch ``[!…]``)."""
    kind = ignore_entry_kind(glob, strategy)
    return kind in ("glob", "tag") and not any(c in glob for c in "[\\")


def _why_regex(globs: list[str], strategy: str) -> str:
    """Why these ignore-tags globs are not written as ``ignore`` entries."""
    why: list[str] = []
    if ranges := [g for g in globs if ignore_entry_kind(g, strategy) == "range"]:
        why.append(
            f"imagebot's ignore reads {ranges[0]} as a version range, which also matches tags"
            " with a v prefix or a suffix"
        )
    if any(c in g for g in globs for c in "[\\"):
        why.append("Go's glob classes and escapes are not Python's")
    if not why:
        why.append("imagebot's ignore would not read them as globs")
    return "; ".join(why) + "."


def _annotation_settings(annotations: dict[str, Any], key: str, base: Settings) -> Settings:
    def get(option: str) -> str | None:
        for name in (f"{PREFIX}{key}.{option}" if key else None, f"{PREFIX}{option}"):
            if name and name in annotations:
                return str(annotations[name])
        return None

    s = replace(base, ignore_tags=list(base.ignore_tags), extra=list(base.extra))
    if (strategy := get("update-strategy")) is not None:
        s.strategy = strategy
    if (allow := get("allow-tags")) is not None:
        s.allow_tags = allow
    if (ignore := get("ignore-tags")) is not None:
        s.ignore_tags = [t.strip() for t in ignore.split(",") if t.strip()]
    for option in (
        "platforms",
        "pull-secret",
        "force-update",
        "helm.image-name",
        "helm.image-tag",
        "helm.image-spec",
        "kustomize.image-name",
    ):
        if (value := get(option)) is not None:
            s.extra.append(f"{option}={value}")
    return s


def _from_annotations(app: Document, warnings: list[str]) -> list[ImageSpec]:
    annotations = mapping(app.meta.get("annotations"))
    listed = annotations.get(f"{PREFIX}image-list")
    if not listed:
        return []
    out = []
    for item in str(listed).split(","):
        if not item.strip():
            continue
        alias, image, constraint = split_image(item)
        key = alias.replace("/", "_")
        out.append(
            ImageSpec(alias, image, constraint, _annotation_settings(annotations, key, Settings()))
        )
    return out


def _crd_settings(value: object, base: Settings) -> Settings:
    common = mapping(value)
    s = replace(base, ignore_tags=list(base.ignore_tags), extra=list(base.extra))
    if common.get("updateStrategy"):
        s.strategy = str(common["updateStrategy"])
    if common.get("allowTags"):
        s.allow_tags = str(common["allowTags"])
    if common.get("ignoreTags"):
        s.ignore_tags = [str(t) for t in common["ignoreTags"]]
    for option in ("platforms", "pullSecret", "forceUpdate"):
        if common.get(option) not in (None, False, []):
            s.extra.append(f"{option}={common[option]}")
    return s


def _app_selected(ref: dict[str, Any], app: Document) -> bool:
    pattern = ref.get("namePattern")
    if pattern and not fnmatch.fnmatchcase(app.name, str(pattern)):
        return False
    labels = mapping(mapping(ref.get("labelSelectors")).get("matchLabels"))
    app_labels = mapping(app.meta.get("labels"))
    return all(app_labels.get(k) == v for k, v in labels.items())


def _from_updater(updater: Document, app: Document, warnings: list[str]) -> list[ImageSpec]:
    spec = updater.spec
    base = _crd_settings(spec.get("commonUpdateSettings"), Settings())
    out = []
    for ref in spec.get("applicationRefs") or []:
        ref = mapping(ref)
        if not _app_selected(ref, app):
            continue
        ref_base = _crd_settings(ref.get("commonUpdateSettings"), base)
        for image in ref.get("images") or []:
            image = mapping(image)
            alias, name, constraint = split_image(str(image.get("imageName", "")))
            settings = _crd_settings(image.get("commonUpdateSettings"), ref_base)
            if image.get("manifestTargets"):
                settings.extra.append(f"manifestTargets={image['manifestTargets']}")
            out.append(ImageSpec(str(image.get("alias") or alias), name, constraint, settings))
        break  # Argo CD Image Updater uses the first applicationRef that matches
    return out


def _environment(
    app: Document,
    images: list[ImageSpec],
    warnings: list[str],
    taken: set[str],
    write_back: dict[str, Any],
) -> EnvironmentOut | None:
    where = f"{app.where()}: Application {app.name}"
    spec = app.spec
    sources = spec.get("sources")
    first = sources[0] if isinstance(sources, list) and sources else None
    source = mapping(spec.get("source")) or mapping(first)
    annotations = mapping(app.meta.get("annotations"))
    notes: list[str] = []
    repo: list[Field] = []
    if source.get("chart"):
        warnings.append(
            f"{where}: its source is the Helm chart {source['chart']}; set repo.url to the"
            " git repository holding its values (or this Application manifest)"
        )
        repo.append(
            Field(
                "url",
                "REPLACE-ME-git-repository-of-this-application",
                f"The source is a Helm chart ({source.get('repoURL')}): imagebot edits files"
                " in git, e.g. this Application's helm.parameters or valuesObject.",
            )
        )
        path = "."
    else:
        repo.append(Field("url", str(source.get("repoURL", ""))))
        path = str(source.get("path") or ".").removeprefix("./").strip("/") or "."
    revision = str(source.get("targetRevision") or "HEAD")
    branch_comment = None
    git_config = mapping(write_back.get("gitConfig"))
    method = str(
        annotations.get(f"{PREFIX}write-back-method") or write_back.get("method") or "argocd"
    )
    git_branch = annotations.get(f"{PREFIX}git-branch") or git_config.get("branch")
    if git_config.get("repository"):
        repo[0] = Field("url", str(git_config["repository"]), "ImageUpdater gitConfig.")
    if git_branch:
        base_branch, _, target = str(git_branch).partition(":")
        revision = base_branch or revision
        if target:
            branch_comment = (
                f"Argo CD Image Updater pushed to branch {target}; imagebot pushes to the"
                " branch it reads (or opens a pull request)."
            )
    if revision == "HEAD":
        revision = "main"
        branch_comment = "targetRevision HEAD: the remote's default branch, assumed main."
    repo.append(Field("branch", revision, branch_comment))
    repo.append(Field("path", path))
    if method.startswith("argocd"):
        notes.append(
            "write-back-method argocd changed the Application in the cluster; imagebot"
            " commits the change to the repository instead (what write-back-method git does)."
        )
    write_target = annotations.get(f"{PREFIX}write-back-target") or git_config.get(
        "writeBackTarget"
    )
    if write_target:
        notes.append(
            f"write-back-target {write_target}: imagebot edits each image where the files hold it,"
            " including .argocd-source-<app>.yaml and kustomization files."
        )
    outs = []
    names: set[str] = set()
    for image in images:
        converted = _image(image, where, warnings, names)
        if converted is not None:
            outs.append(converted)
    if not outs:
        return None
    return EnvironmentOut(
        name=unique(policy_name(app.name), taken),
        origin=f"Application {app.name} ({app.path})",
        repo=repo,
        images=outs,
        notes=notes,
    )


def _image(image: ImageSpec, where: str, warnings: list[str], names: set[str]) -> ImageOut | None:
    try:
        repository = parse(image.image).familiar
    except InvalidReference as exc:
        warnings.append(f"{where}: image {image.image!r}: {exc}; not converted")
        return None
    s = image.settings
    label = image.alias or repository.rsplit("/", 1)[-1]
    fields = [Field("name", unique(policy_name(label), names)), Field("repository", repository)]
    strategy = STRATEGIES.get(s.strategy)
    if strategy is None:
        warnings.append(f"{where}: update-strategy {s.strategy!r} unknown; semver used")
        strategy = "semver"
    if strategy == "semver":
        fields.extend(
            range_fields(image.constraint, where, warnings, dialect="Argo CD Image Updater")
        )
    else:
        fields.append(Field("strategy", strategy, f"update-strategy {s.strategy}."))
        if strategy == "digest":
            fields.append(Field("follow", image.constraint or "latest"))
        elif image.constraint and strategy == "newest-build":
            fields[-1].comment = (
                f"update-strategy {s.strategy}; the tag in the image list"
                f" ({image.constraint}) is not a constraint here."
            )
    tags: list[Field] = []
    if s.allow_tags and s.allow_tags != "any":
        if s.allow_tags.startswith("regexp:"):
            tags.append(Field("include", s.allow_tags.removeprefix("regexp:")))
        else:
            warnings.append(f"{where}: allow-tags {s.allow_tags!r} not understood; ignored")
    ignored = [g for g in s.ignore_tags if _exact_ignore(g, strategy)]
    if ignored:
        fields.append(Field("ignore", ignored))
    if regexes := [g for g in s.ignore_tags if g not in ignored]:
        tags.append(
            Field(
                "exclude",
                [_glob_regex(g) for g in regexes],
                f"ignore-tags {', '.join(regexes)} as anchored regexes: "
                + _why_regex(regexes, strategy),
            )
        )
    if tags:
        fields.append(Field("tags", tags))
    if s.extra:
        fields[0].comment = (
            "No equivalent here: "
            + "; ".join(s.extra)
            + " (imagebot finds the image fields itself; credentials go to registries.yaml)."
        )
    return ImageOut(
        origin=f"image {image.alias + '=' if image.alias else ''}{image.image}", fields=fields
    )

"""Flux image automation → policy files.

``ImageUpdateAutomation`` becomes an environment (its GitRepository, branch and update
path), each ``ImagePolicy`` of its namespace an image policy (with its ``ImageRepository``'s
image and exclusion list). Flux edits only fields carrying a ``$imagepolicy`` marker of its
own namespace, so the environment says ``detect: markers`` and ``marker_namespace``.
API: https://fluxcd.io/flux/components/image/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagebot.migrate.model import EnvironmentOut, Field, ImageOut, Migration, policy_name, unique
from imagebot.migrate.ranges import range_fields
from imagebot.migrate.sources import Document, documents, mapping

IMAGE_GROUP = "image.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
#: Flux applies a manifest without a namespace to the namespace its Kustomization targets;
#: kubectl's default is the best guess when only the files are known.
DEFAULT_NAMESPACE = "default"
#: ImageRepository's exclusionList when none is given (cosign signatures).
DEFAULT_EXCLUSION = "^.*\\.sig$"


def convert(files: Mapping[str, str]) -> Migration:
    out = Migration(tool="flux")
    docs = list(documents(files, out.warnings))
    repositories = _index(docs, IMAGE_GROUP, "ImageRepository")
    policies = _index(docs, IMAGE_GROUP, "ImagePolicy")
    sources = _index(docs, SOURCE_GROUP, "GitRepository")
    automations = [d for d in docs if d.group == IMAGE_GROUP and d.kind == "ImageUpdateAutomation"]
    taken: set[str] = set()
    for automation in automations:
        env = _environment(automation, policies, repositories, sources, out.warnings, taken)
        if env is not None:
            out.environments.append(env)
    automated = {automation_namespace(a) for a in automations}
    for (ns, name), policy in policies.items():
        if ns not in automated:
            out.warnings.append(
                f"{policy.where()}: ImagePolicy {ns}/{name} belongs to no ImageUpdateAutomation"
                " in the directory; not converted"
            )
    if not automations and not policies:
        out.warnings.append("no Flux ImageUpdateAutomation or ImagePolicy found")
    return out


def automation_namespace(doc: Document) -> str:
    return doc.namespace or DEFAULT_NAMESPACE


def _index(docs: list[Document], group: str, kind: str) -> dict[tuple[str, str], Document]:
    return {
        (d.namespace or DEFAULT_NAMESPACE, d.name): d
        for d in docs
        if d.group == group and d.kind == kind
    }


def _selected(policy: Document, selector: dict[str, Any]) -> bool:
    labels = mapping(policy.meta.get("labels"))
    wanted = mapping(selector.get("matchLabels"))
    return all(labels.get(k) == v for k, v in wanted.items())


def _environment(
    automation: Document,
    policies: dict[tuple[str, str], Document],
    repositories: dict[tuple[str, str], Document],
    sources: dict[tuple[str, str], Document],
    warnings: list[str],
    taken: set[str],
) -> EnvironmentOut | None:
    ns = automation_namespace(automation)
    spec = automation.spec
    where = f"{automation.where()}: ImageUpdateAutomation {ns}/{automation.name}"
    selector = mapping(spec.get("policySelector"))
    mine = [p for (pns, _), p in sorted(policies.items()) if pns == ns and _selected(p, selector)]
    images = [img for p in mine if (img := _image(p, repositories, warnings)) is not None]
    if not images:
        warnings.append(f"{where}: no ImagePolicy of namespace {ns} to convert")
        return None
    env = EnvironmentOut(
        name=unique(policy_name(automation.name), taken),
        origin=f"ImageUpdateAutomation {ns}/{automation.name} ({automation.path})",
        repo=_repo(automation, sources, warnings, where),
        images=images,
    )
    update = mapping(spec.get("update"))
    env.settings.append(
        Field(
            "detect",
            "markers",
            "Flux edits only fields that carry a $imagepolicy marker"
            f" (update strategy {update.get('strategy', 'Setters')}).",
        )
    )
    env.settings.append(
        Field(
            "marker_namespace",
            ns,
            "The automation applies the ImagePolicies of its own namespace only.",
        )
    )
    if spec.get("interval"):
        env.notes.append(
            f"Flux ran this automation every {spec['interval']}; imagebot's schedule is set"
            " where it runs (imagebot apply from a scheduler, or imagebot serve)."
        )
    if selector.get("matchExpressions"):
        env.notes.append(
            "policySelector.matchExpressions was not evaluated: check the image list below."
        )
    git = mapping(spec.get("git"))
    commit = mapping(git.get("commit"))
    if commit.get("messageTemplate"):
        env.notes.append(
            "Flux's commit messageTemplate has no equivalent: imagebot writes its own message"
            " with Imagebot-* trailers."
        )
    if commit.get("signingKey"):
        env.notes.append("Flux signed commits (signingKey); configure signing for imagebot.")
    return env


def _repo(
    automation: Document, sources: dict[tuple[str, str], Document], warnings: list[str], where: str
) -> list[Field]:
    spec = automation.spec
    ref = mapping(spec.get("sourceRef"))
    source_ns = str(ref.get("namespace") or automation_namespace(automation))
    source = sources.get((source_ns, str(ref.get("name", ""))))
    fields: list[Field] = []
    if source is None:
        warnings.append(
            f"{where}: GitRepository {source_ns}/{ref.get('name')} is not in the directory;"
            " set repo.url in the converted policy"
        )
        fields.append(
            Field(
                "url",
                f"REPLACE-ME-GitRepository-{ref.get('name', 'unknown')}",
                "The GitRepository this automation pushes to was not among the converted"
                " files: put its URL here.",
            )
        )
    else:
        url = str(source.spec.get("url", ""))
        comment = None
        if source.spec.get("secretRef"):
            comment = (
                f"Flux used the secret {source.spec['secretRef'].get('name')} for git; give"
                " imagebot a credential for this URL (SSH key or token)."
            )
        fields.append(Field("url", url, comment))
    git = mapping(spec.get("git"))
    checkout = mapping(mapping(git.get("checkout")).get("ref"))
    source_ref = mapping(source.spec.get("ref")) if source is not None else {}
    branch = checkout.get("branch") or source_ref.get("branch") or "main"
    push = mapping(git.get("push"))
    comment = None
    if push.get("branch") and push.get("branch") != branch:
        comment = (
            f"Flux checked out {branch} and pushed to {push['branch']}: imagebot pushes to the"
            " branch it reads (publish a pull request to propose changes from another branch)."
        )
    elif push.get("refspec"):
        comment = f"Flux pushed with refspec {push['refspec']}; imagebot pushes to the branch."
    fields.append(Field("branch", str(branch), comment))
    path = str(mapping(spec.get("update")).get("path") or ".")
    path = path.removeprefix("./").strip("/") or "."
    fields.append(Field("path", path))
    author = mapping(mapping(git.get("commit")).get("author"))
    if author.get("name") or author.get("email"):
        sub = [Field(k, str(author[k])) for k in ("name", "email") if author.get(k)]
        fields.append(Field("author", sub))
    return fields


def _image(
    policy: Document, repositories: dict[tuple[str, str], Document], warnings: list[str]
) -> ImageOut | None:
    ns = policy.namespace or DEFAULT_NAMESPACE
    spec = policy.spec
    where = f"{policy.where()}: ImagePolicy {ns}/{policy.name}"
    ref = mapping(spec.get("imageRepositoryRef"))
    repo_ns = str(ref.get("namespace") or ns)
    repository = repositories.get((repo_ns, str(ref.get("name", ""))))
    if repository is None or not repository.spec.get("image"):
        warnings.append(
            f"{where}: ImageRepository {repo_ns}/{ref.get('name')} is not in the directory;"
            " not converted"
        )
        return None
    name = policy_name(policy.name)
    fields = [
        Field(
            "name",
            name,
            None
            if name == policy.name
            else f"Flux name {policy.name!r} is not a valid image name here: markers must say"
            f" {ns}:{name}.",
        ),
        Field("repository", str(repository.spec["image"]), _repository_comment(repository)),
    ]
    fields.extend(_strategy(mapping(spec.get("policy")), where, warnings))
    fields.append(
        Field(
            "downgrade",
            True,
            "Flux writes the policy's latest version whatever the file holds, lower or not.",
        )
    )
    tags: list[Field] = []
    filter_tags = mapping(spec.get("filterTags"))
    if filter_tags.get("pattern"):
        tags.append(Field("include", str(filter_tags["pattern"])))
        if filter_tags.get("extract"):
            tags.append(Field("extract", str(filter_tags["extract"])))
    exclusions = repository.spec.get("exclusionList")
    if exclusions is None:
        tags.append(Field("exclude", [DEFAULT_EXCLUSION], "Flux's default exclusionList."))
    elif exclusions:
        tags.append(Field("exclude", [str(e) for e in exclusions]))
    if tags:
        fields.append(Field("tags", tags))
    reflect = spec.get("digestReflectionPolicy")
    if reflect in ("Always", "IfNotPresent"):
        fields.append(
            Field(
                "digest",
                "pin",
                f"digestReflectionPolicy {reflect}: imagebot resolves the digest of the"
                " chosen tag at each change and writes it where the file pins one.",
            )
        )
    return ImageOut(origin=f"ImagePolicy {ns}/{policy.name} ({policy.path})", fields=fields)


def _repository_comment(repository: Document) -> str | None:
    spec = repository.spec
    notes = []
    if spec.get("secretRef"):
        notes.append(
            f"Flux pulled with the secret {spec['secretRef'].get('name')}: add the registry"
            " to registries.yaml or a docker config."
        )
    if spec.get("provider") not in (None, "generic"):
        notes.append(
            f"provider {spec['provider']}: imagebot uses that cloud's credentials for the"
            " registry when registries.yaml says so."
        )
    if spec.get("certSecretRef") or spec.get("insecure"):
        notes.append("TLS settings (certSecretRef/insecure) go to registries.yaml.")
    if spec.get("interval"):
        notes.append(f"Flux scanned every {spec['interval']}.")
    return " ".join(notes) or None


def _strategy(policy: dict[str, Any], where: str, warnings: list[str]) -> list[Field]:
    if "semver" in policy:
        range_text = str(mapping(policy["semver"]).get("range", ""))
        return range_fields(range_text, where, warnings, dialect="Flux")
    for flux_name, strategy in (("alphabetical", "lexical"), ("numerical", "numeric")):
        if flux_name in policy:
            order = str(mapping(policy[flux_name]).get("order") or "asc")
            fields = [Field("strategy", strategy, f"Flux policy {flux_name}.")]
            if order != "asc":
                fields.append(Field("order", order))
            return fields
    warnings.append(f"{where}: no semver, alphabetical or numerical policy; semver assumed")
    return [Field("strategy", "semver")]

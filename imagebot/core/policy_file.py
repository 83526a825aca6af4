"""Reading one policy file: ``parse_policy`` validates its text into a ``LoadedPolicy`` and
reports every problem in one pass and in file order — pydantic's errors in plain words, and
the rule problems (a bad range, a regex) that a type error elsewhere would otherwise hide
until the next round of fixes — each at file:line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from imagebot.core import yamldoc
from imagebot.core.policy import (
    EnvironmentPolicy,
    ImageDefaults,
    ImagePolicy,
    ImageRule,
    LoadedPolicy,
    policy_json_schema,
    rule_field_path,
)
from imagebot.core.publish_policy import derive_project
from imagebot.core.selection import compile_rule, ignore_entry_kind, validate_rule
from imagebot.errors import PolicyError, SelectionError


def all_problems(
    source: str, doc: CommentedMap, data: Mapping[str, Any], exc: ValidationError
) -> list[str]:
    """``file:line: field: message`` for each problem, ordered by line."""
    problems = yamldoc.validation_problems(source, doc, exc, fields=_field_names())
    problems += [yamldoc.problem_at(source, doc, *p) for p in _hidden_rule_problems(data, exc)]
    return sorted(problems, key=lambda p: int(p.removeprefix(f"{source}:").split(":", 1)[0]))


@cache
def _field_names() -> frozenset[str]:
    return yamldoc.field_names(policy_json_schema())


def _hidden_rule_problems(
    data: Mapping[str, Any], exc: ValidationError
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """The rule problems (a bad range, regex…) a failed validation would otherwise hide
    until the next round of fixes: each image entry, and ``defaults``, checked on its own
    without the fields already reported."""
    images = data.get("images")
    entries: list[tuple[tuple[Any, ...], Any]] = [(("defaults",), data.get("defaults"))]
    if isinstance(images, list):
        entries += [(("images", i), entry) for i, entry in enumerate(images)]
    for at, entry in entries:
        if not isinstance(entry, dict):
            continue
        reported = {p for err in exc.errors() if tuple(err["loc"][: len(at)]) == at
                    for p in err["loc"][len(at):] if p in entry}  # fmt: skip
        rest = {k: v for k, v in entry.items() if k not in reported}
        model: type[ImageRule] = ImageDefaults
        if at[0] == "images":  # a reported name or repository stands in, to check the rest
            model, rest = ImagePolicy, {"name": "x", "repository": "x", **rest}
        try:
            rule = model.model_validate(rest)
            validate_rule(rule.rule())
        except ValidationError:
            continue
        except SelectionError as err:
            yield (*at, *rule_field_path(err.field)), str(err)


def parse_policy(text: str, *, source: str) -> LoadedPolicy:
    """Validate one policy file's text; raise PolicyError listing every problem found."""
    doc = yamldoc.load_mapping(text, source=source, what="policy file")
    if doc is None:
        raise PolicyError([f"{source}:1: empty policy file"])
    data = yamldoc.plain_mapping(doc, source=source)
    try:
        model = EnvironmentPolicy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(all_problems(source, doc, data, exc)) from None
    problems = [
        yamldoc.problem_at(source, doc, loc, message)
        for loc, message in [*_rule_problems(model), *_publish_problems(model)]
    ]
    if problems:
        raise PolicyError(problems)
    lines = yamldoc.written_lines(doc)
    warnings = tuple(
        yamldoc.problem_at(source, doc, loc, message) for loc, message in _rule_warnings(model)
    )
    return LoadedPolicy(source=source, policy=model, lines=lines, warnings=warnings)


def _rules(model: EnvironmentPolicy) -> list[tuple[tuple[str | int, ...], ImageRule]]:
    """Every rule of the file with where it is written: ``images[i]``, then ``defaults``."""
    out: list[tuple[tuple[str | int, ...], ImageRule]] = [
        (("images", i), image) for i, image in enumerate(model.images)
    ]
    if model.defaults is not None:
        out.append((("defaults",), model.defaults))
    return out


def _rule_warnings(model: EnvironmentPolicy) -> Iterator[tuple[tuple[Any, ...], str]]:
    for at, image in _rules(model):
        rule = image.rule()
        compiled = compile_rule(rule)
        if compiled.needs_digest and rule.follow is None:
            yield (
                (*at, "strategy"),
                "strategy digest without follow follows whatever tag each file runs, and an"
                " image pinned by digest alone cannot be followed; set follow (e.g. latest)",
            )
        if compiled.named_cores and "range_style" not in image.model_fields_set:
            yield (
                (*at, "range"),
                f"range {rule.range!r} spells a prerelease: npm (imagebot's default) admits only"
                " that release's prereleases, Flux and Argo CD (Masterminds) every prerelease in"
                " range; set range_style: npm or masterminds to say which you mean",
            )
        for entry in rule.ignore:
            if ignore_entry_kind(entry, rule.strategy) is None:
                yield (
                    (*at, "ignore"),
                    f"ignore entry {entry!r} is not a tag, a glob or a semver range:"
                    " it ignores nothing",
                )


def _rule_problems(model: EnvironmentPolicy) -> Iterator[tuple[tuple[Any, ...], str]]:
    if not model.images and model.defaults is None:
        yield ("images",), "give at least one image entry, or `defaults`"
    for at, image in _rules(model):
        try:
            validate_rule(image.rule())
        except SelectionError as exc:
            yield (*at, *rule_field_path(exc.field)), str(exc)


def _publish_problems(model: EnvironmentPolicy) -> Iterator[tuple[tuple[Any, ...], str]]:
    publish = model.publish
    if publish.mode != "pull-request" or publish.forge is None:
        return
    if publish.branch_for(model.environment) == model.repo.branch:
        yield ("publish", "branch"), f"must differ from repo.branch {model.repo.branch!r}"
    if publish.forge.project is None and derive_project(model.repo.url) is None:
        yield (
            ("publish", "forge", "project"),
            f"cannot be derived from repo.url {model.repo.url!r}; give owner/name",
        )

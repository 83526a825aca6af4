"""Every problem of a policy file that fails validation, in one pass and in file order:
pydantic's errors in plain words, and the rule problems (a bad range, a regex) that a
type error elsewhere would otherwise hide until the next round of fixes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from imagebot.core import yamldoc
from imagebot.core.policy import (
    ImageDefaults,
    ImagePolicy,
    ImageRule,
    policy_json_schema,
    rule_field_path,
)
from imagebot.core.selection import validate_rule
from imagebot.errors import SelectionError


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

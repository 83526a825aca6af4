"""``imagebot check``: validate every policy file (and registries.yaml); exit 1 on any problem."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imagebot.cli import cycle, options
from imagebot.cli.options import add_registry_arguments
from imagebot.config import path_beside
from imagebot.core import yamldoc
from imagebot.core.governing import overlapping_patterns
from imagebot.core.policy import LoadedPolicy
from imagebot.errors import PolicyError
from imagebot.registry.providers.spec import BasicSource
from imagebot.registry.settings import RegistriesSettings
from imagebot.registry.trust import TrustError, load_signature

NAME = "check"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_policy_arguments(parser)
    add_registry_arguments(parser, insecure=False)


def overlap_warnings(loaded: LoadedPolicy) -> list[str]:
    """One line per pair of pattern entries that some repository matches both of."""
    out = []
    for a, b in overlapping_patterns(loaded.policy):
        assert a.pattern is not None and b.pattern is not None
        if a.pattern.specificity == b.pattern.specificity:
            winner, why = a, "listed first"
        else:
            winner = a if a.pattern.specificity > b.pattern.specificity else b
            why = "more specific"
        out.append(
            f"{loaded.source}: images[{a.name}] ({a.repository}) and images[{b.name}]"
            f" ({b.repository}) overlap; a repository matching both follows"
            f" images[{winner.name}] ({why})"
        )
    return out


def run(args: argparse.Namespace) -> int:
    policies = cycle.load(args)
    problems = list(policies.problems)
    try:
        settings = cycle.registry_settings(args)
    except PolicyError as exc:
        problems.extend(exc.problems)
    else:
        for warning in credential_warnings(settings):
            print(f"warning: {warning}", file=sys.stderr)
    for loaded in policies.environments:
        problems.extend(trust_problems(loaded))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    known = {p.name: p for p in policies.catalog}
    for loaded in policies.environments:
        for warning in (*loaded.warnings, *overlap_warnings(loaded)):
            print(f"warning: {warning}", file=sys.stderr)
        promote = loaded.policy.promote
        upstream = known.get(promote.from_) if promote is not None else None
        if promote and promote.checks and upstream and upstream.policy.publish.forge is None:
            # The checks gate reads commit statuses through the upstream's forge; without
            # one it cannot see them, so it blocks rather than promote unchecked.
            print(
                f"warning: {loaded.at('promote.checks')}: promote.checks: {upstream.name}"
                f" names no forge (publish.forge in {upstream.source}), so commit statuses"
                f" cannot be read and promotions into {loaded.name} wait at the checks gate",
                file=sys.stderr,
            )
        images = len(loaded.policy.images)
        defaults = " and defaults" if loaded.policy.defaults is not None else ""
        publish = loaded.policy.publish
        how = ""
        if publish.mode == "pull-request" and publish.forge is not None:
            branch = publish.branch_for(loaded.name)
            how = f", pull requests from {branch} on {publish.forge.type}"
        print(f"ok: {loaded.source}: environment {loaded.name}, {images} image(s){defaults}{how}")
        for warning in token_warnings(loaded):
            print(f"warning: {warning}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    return 0


def credential_warnings(settings: RegistriesSettings) -> list[str]:
    """A registry credential variable this process does not have: a warning, as for a
    forge token (the secret may exist only where imagebot runs)."""
    out = []
    entries = [settings.defaults, *settings.registries.values()]
    for source in (e.credentials for e in entries if isinstance(e.credentials, BasicSource)):
        for field in ("username_env", "password_env"):
            name = getattr(source, field)
            if name and not os.environ.get(name):
                where = source.at or "registries.yaml"
                out.append(f"{where}: credentials.{field}: environment variable {name} is not"
                           " set here")  # fmt: skip
    return out


def trust_problems(loaded: LoadedPolicy) -> list[str]:
    """The keys and trusted roots of every ``verify`` block, loaded as a cycle loads them."""
    policy, out = loaded.policy, []
    blocks = [
        ((), policy.verify),
        *((("images", i), e.verify) for i, e in enumerate(policy.images)),
    ]
    if policy.defaults is not None:
        blocks.append((("defaults",), policy.defaults.verify))
    for at, spec in blocks:
        for i, sig in enumerate(spec.signatures if spec is not None else ()):
            try:
                load_signature(sig, i, base=Path(loaded.source).parent)
            except TrustError as exc:
                where = yamldoc.dotted((*at, "verify", *exc.field))
                out.append(f"{loaded.at(where)}: {where}: {exc}")
    return out


def token_warnings(loaded: LoadedPolicy) -> list[str]:
    """A forge token this process could not find: a warning, not an error — the secret may
    exist only where imagebot runs, not where its policies are checked."""
    forge = loaded.policy.publish.forge
    if forge is None or loaded.policy.publish.mode != "pull-request":
        return []
    if forge.token_env is not None and not os.environ.get(forge.token_env):
        field, why = "token_env", f"environment variable {forge.token_env} is not set here"
    elif forge.token_file is not None:
        path = path_beside(forge.token_file, loaded.source)
        if path.is_file():
            return []
        field, why = "token_file", f"{path} does not exist here"
    else:
        return []
    where = f"publish.forge.{field}"
    return [f"{loaded.at(where)}: {where}: {why}"]

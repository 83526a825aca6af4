"""``imagebot tags REF...``: list repositories' tags through the full registry client.

Auth, pagination, the tag cap, signature-tag filtering, politeness and the SQLite cache
all apply, so what this prints is exactly what a policy gets to choose from. Tags are
printed oldest to newest by version (other tags first, in natural order), except from a
registry configured with ``tag_order: newest-first`` or ``oldest-first``, whose order they
keep. With several references they are listed concurrently.

Text output: with one reference, one tag per line; with several, each reference on a line
of its own followed by its tags indented. ``--output json`` prints one object mapping each
reference *as given* to its list of tags, or to ``{"error": "..."}`` if it failed. Errors
also go to stderr; exit 1 if any reference failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import anyio

from imagebot.cache import FILE_NAME, Cache
from imagebot.cli.options import add_registry_arguments, default_cache_dir
from imagebot.core.reference import parse
from imagebot.errors import ImagebotError, RegistryError
from imagebot.registry.client import RegistryClient
from imagebot.registry.connect import connect
from imagebot.registry.settings import RegistriesSettings, load_registries
from imagebot.registry.tags import newness

NAME = "tags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("refs", nargs="+", metavar="REF", help="image reference, e.g. nginx")
    parser.add_argument("--output", "-o", choices=["text", "json"], default="text")
    add_registry_arguments(parser, beside_policies=False)
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"SQLite cache file (default: $IMAGEBOT_CACHE_DIR/{FILE_NAME})",
    )


async def list_refs(
    refs: list[str], *, settings: RegistriesSettings, cache: Cache
) -> dict[str, list[str] | ImagebotError]:
    """Tags for each reference as given; a reference's failure is its own entry."""
    out: dict[str, list[str] | ImagebotError] = {}
    repositories: dict[str, str] = {}
    for ref in refs:
        try:
            repositories[ref] = parse(ref).repository
        except ImagebotError as exc:
            out[ref] = exc
    async with connect(settings, cache=cache) as client:
        scanned = await list_each(client, repositories.values())
    for ref, repository in repositories.items():
        tags = scanned[repository]
        if isinstance(tags, list) and settings.for_host(repository.split("/")[0]).tag_order == (
            "lexical"
        ):
            # A registry listing in text (or no useful) order: print versions in their order.
            tags = sorted(tags, key=newness)
        out[ref] = tags
    return {ref: out[ref] for ref in refs}


async def list_each(
    client: RegistryClient, repositories: Iterable[str]
) -> dict[str, list[str] | RegistryError]:
    """List the repositories concurrently; each gets its tags or its own error."""
    results: dict[str, list[str] | RegistryError] = {}

    async def one(repository: str) -> None:
        try:
            results[repository] = await client.list_tags(repository)
        except RegistryError as exc:
            results[repository] = exc

    async with anyio.create_task_group() as tg:
        for repository in dict.fromkeys(repositories):
            tg.start_soon(one, repository)
    return results


def run(args: argparse.Namespace) -> int:
    settings = (
        load_registries(args.registries) if args.registries else RegistriesSettings()
    ).with_insecure(frozenset(args.insecure_registry))
    cache_path: Path = args.cache or default_cache_dir() / FILE_NAME
    try:
        cache = Cache(cache_path)
    except Exception as exc:  # sqlite3.Error, OSError: an unusable cache path
        print(f"error: cache {cache_path}: {exc}", file=sys.stderr)
        return 2
    try:
        results = anyio.run(lambda: list_refs(args.refs, settings=settings, cache=cache))
    finally:
        cache.close()
    listed: dict[str, list[str]] = {}
    errors: dict[str, str] = {}
    for ref, result in results.items():
        if isinstance(result, list):
            listed[ref] = result
            continue
        # A registry error already starts with the repository; name the ref only if the
        # user wrote it differently (``nginx`` for docker.io/library/nginx).
        text = str(result)
        errors[ref] = text if text.startswith(f"{ref}:") else f"{ref}: {text}"
        kind = "error" if isinstance(result, RegistryError) else "invalid reference"
        print(f"{kind}: {errors[ref]}", file=sys.stderr)
    if args.output == "json":
        doc = {ref: listed[ref] if ref in listed else {"error": errors[ref]} for ref in results}
        # No indent: the C encoder then does the work, which matters at 100,000s of tags.
        sys.stdout.write(json.dumps(doc) + "\n")
    elif len(args.refs) == 1:
        for tag in listed.get(args.refs[0], []):
            print(tag)
    else:
        for ref, tags in listed.items():
            print(ref)
            for tag in tags:
                print(f"  {tag}")
    return 1 if errors else 0

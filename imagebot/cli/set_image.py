"""``imagebot set-image``: set the version of one image in any supported file, byte-exact.

Like ``kustomize edit set image``, for every file kind imagebot edits. Nothing is written
unless every file can be edited safely.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from imagebot.core.reference import familiar_repository, join_reference, normalize_repository
from imagebot.core.rewrite import Edit, Target, apply, locate
from imagebot.errors import EditError, InvalidReference

NAME = "set-image"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path)
    parser.add_argument(
        "--image",
        required=True,
        metavar="REPOSITORY",
        help="repository to update, short or full (nginx, ghcr.io/acme/app)",
    )
    parser.add_argument("--tag", help="new tag (without it, the tag written stays)")
    parser.add_argument(
        "--digest",
        help="pin this digest (sha256:...); required when a reference already pins one",
    )


def _edit_file(
    path: Path, repository: str, tag: str | None, digest: str | None
) -> tuple[str, str, list[str], int]:
    """(old text, new text, printed lines, references found) for one file; raises EditError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise EditError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise EditError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    targets: list[Target] = [
        t
        for t in locate(text, source=str(path), repositories=[repository])
        if t.repository == repository
    ]
    if not targets:
        return text, text, [], 0
    if digest is None:
        pinned = next((t for t in targets if t.digest is not None), None)
        if pinned is not None:
            # Moving the tag alone would leave the old image running under its digest, and
            # a digest field of its own would be emptied: the new digest is needed.
            raise EditError(
                f"{path}:{pinned.line}: {pinned.field} pins digest {pinned.digest}; give the"
                " new version's digest with --digest (imagebot plan resolves it from the"
                " registry)"
            )
    new = apply(text, [Edit(t, tag, digest) for t in targets], source=str(path))
    report, name = [], familiar_repository(repository)
    for t in targets:
        # A digest-only pin takes only the digest; without --tag the tag written stays.
        new_tag = None if t.digest_only and digest else tag or t.tag
        if (t.tag, t.digest) != (new_tag, digest):
            was, now = join_reference(name, t.tag, t.digest), join_reference(name, new_tag, digest)
            report.append(f"{path}:{t.line}: {t.field}: {was} -> {now}")
    return text, new, report, len(targets)


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permissions."""
    mode = path.stat().st_mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    try:
        repository = normalize_repository(args.image)
    except InvalidReference as exc:
        print(f"imagebot set-image: --image {args.image}: {exc}", file=sys.stderr)
        return 2
    if args.tag is None and args.digest is None:
        print("imagebot set-image: give --tag, --digest or both", file=sys.stderr)
        return 2
    results: list[tuple[Path, str, list[str]]] = []
    failed = False
    found_any = False
    for path in args.files:
        try:
            old, new, report, count = _edit_file(path, repository, args.tag, args.digest)
        except EditError as exc:
            print(f"imagebot set-image: {exc}", file=sys.stderr)
            failed = True
            continue
        found_any = found_any or count > 0
        if new != old:
            results.append((path, new, report))
    if failed:
        print("imagebot set-image: no file was changed", file=sys.stderr)
        return 1
    for path, new, report in results:  # a change line only once its file is written
        _write(path, new)
        for line in report:
            print(line)
    if not found_any:
        print(f"imagebot set-image: no reference to {args.image} found", file=sys.stderr)
        return 1
    return 0

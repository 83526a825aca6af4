"""Parsed policy files kept in the cache directory, so a new process skips parsing a file
whose text did not change (at a thousand image entries, parsing and validating the YAML
cost about a second, a fifth of a plan's CPU).

One pickle per policy file, holding the key it was made for: the imagebot version, the
working directory (relative repo paths resolve against it), the file's path and its text.
Any other key, or a file that cannot be read, means parsing again: deleting the directory
costs time, never a stale policy. The cache directory is trusted like the rest of it.
"""

from __future__ import annotations

import copyreg
import dataclasses
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

from imagebot import __version__
from imagebot.core.policy import LoadedPolicy, parse_policy
from imagebot.core.selection import SelectionRule


def _rule_state(rule: SelectionRule) -> tuple[Any, ...]:
    # A rule is stored by its fields: its compiled form holds closures pickle cannot write,
    # and is rebuilt on first use.
    return SelectionRule, tuple(getattr(rule, f.name) for f in dataclasses.fields(rule))


copyreg.pickle(SelectionRule, _rule_state)


def parse_cached(text: str, *, source: str, cache_dir: Path) -> LoadedPolicy:
    """``parse_policy(text, source=source)``, from ``cache_dir`` when the same text was
    parsed before. Only valid policies are stored: a bad file is parsed (and reported)
    every time."""
    key = f"{__version__}\0{os.getcwd()}\0{source}\0{text}".encode()
    digest = hashlib.sha256(key).hexdigest()
    name = hashlib.sha256(f"{os.getcwd()}\0{source}".encode()).hexdigest()[:32]
    path = cache_dir / "policies" / f"{name}.pickle"
    try:
        with path.open("rb") as f:
            stored_digest, policy = pickle.load(f)
        if stored_digest == digest and isinstance(policy, LoadedPolicy):
            return policy
    except Exception:  # missing, torn or from another version: parse again
        pass
    policy = parse_policy(text, source=source)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps((digest, policy), protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
    except OSError:
        pass  # a read-only cache directory costs the parse next time, nothing else
    return policy

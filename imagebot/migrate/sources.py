"""The peers' manifests as plain data: every YAML document of every file, with where it is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Document:
    """One YAML document that is a mapping."""

    path: str
    index: int
    data: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or "")

    @property
    def group(self) -> str:
        """The API group (``image.toolkit.fluxcd.io``) without the version."""
        return str(self.data.get("apiVersion") or "").rpartition("/")[0]

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or "")

    @property
    def namespace(self) -> str | None:
        ns = self.meta.get("namespace")
        return str(ns) if ns else None

    @property
    def meta(self) -> dict[str, Any]:
        meta = self.data.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def spec(self) -> dict[str, Any]:
        return mapping(self.data.get("spec"))

    def where(self) -> str:
        number = f" (document {self.index + 1})" if self.index else ""
        return f"{self.path}{number}"


def mapping(value: object) -> dict[str, Any]:
    """``value`` if it is a mapping, else an empty one (a field absent or mistyped)."""
    return value if isinstance(value, dict) else {}


def documents(files: Mapping[str, str], warnings: list[str]) -> Iterator[Document]:
    """The mapping documents of ``files`` (path → text); a file that is not YAML is named in
    ``warnings`` and skipped."""
    for path in sorted(files):
        try:
            loaded = list(yaml.safe_load_all(files[path]))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            warnings.append(f"{path}{line}: not YAML, skipped ({getattr(exc, 'problem', exc)})")
            continue
        for index, data in enumerate(loaded):
            if isinstance(data, dict):
                yield Document(path, index, data)

"""``imagebot migrate``: turn another tool's image-update configuration into policy files.

Each converter takes the files of a directory (path → text) and returns a
:class:`~imagebot.migrate.model.Migration`: environments ready to render, and warnings
naming what could not be converted. Converters are pure; the command reads and writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from imagebot.migrate.model import Migration


def _flux(files: Mapping[str, str], repo_url: str | None) -> Migration:
    from imagebot.migrate.flux import convert

    return convert(files)


def _argocd(files: Mapping[str, str], repo_url: str | None) -> Migration:
    from imagebot.migrate.argocd import convert

    return convert(files)


def _renovate(files: Mapping[str, str], repo_url: str | None) -> Migration:
    from imagebot.migrate.renovate import convert

    return convert(files, repo_url=repo_url)


#: ``--from`` name → converter(files, repo URL of the directory if it is a checkout).
CONVERTERS: dict[str, Callable[[Mapping[str, str], str | None], Migration]] = {
    "flux": _flux,
    "argocd-image-updater": _argocd,
    "renovate": _renovate,
}

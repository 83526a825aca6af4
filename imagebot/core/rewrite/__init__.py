"""Byte-exact rewriting of image references in GitOps files.

:func:`locate` finds every image reference (and marker) in a file's text, :func:`apply`
splices new versions into exactly those characters and proves by re-parsing that nothing
else changed. :func:`mentions` says, without parsing, whether a file can matter at all.
See docs/rewrite.md for the file kinds and markers.
"""

from __future__ import annotations

from imagebot.core.rewrite.edit import apply
from imagebot.core.rewrite.locate import locate
from imagebot.core.rewrite.prefilter import mentions
from imagebot.core.rewrite.targets import Edit, Target

__all__ = [
    "Edit",
    "Target",
    "apply",
    "locate",
    "mentions",
]

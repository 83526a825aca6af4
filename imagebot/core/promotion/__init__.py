"""Promotion and holds, from git history alone: pure functions over plain values.

``history`` replays an environment's commits into each image's runs; ``holds`` finds the
versions a human rolled back from; ``gates`` turns away the versions an upstream ran that
may not be promoted yet; ``views`` says what each image may move to this cycle; ``record``
is the one decision record every command and the daemon render.
"""

from __future__ import annotations

from .gates import CommitStatuses, UpstreamVersion, upstream_versions
from .history import HistoryCommit, Ref, Run, fold_history, runs_by_image, runs_of
from .holds import TRAILER_LIFT_HOLD, Hold, holds_of
from .record import ImageRecord, PullRequestRecord, records
from .views import ImageView, Prepared, annotate, hold_back_groups, prepare, promotion_view

__all__ = [
    "TRAILER_LIFT_HOLD",
    "CommitStatuses",
    "HistoryCommit",
    "Hold",
    "ImageRecord",
    "ImageView",
    "Prepared",
    "PullRequestRecord",
    "Ref",
    "Run",
    "UpstreamVersion",
    "annotate",
    "fold_history",
    "hold_back_groups",
    "holds_of",
    "prepare",
    "promotion_view",
    "records",
    "runs_by_image",
    "runs_of",
    "upstream_versions",
]

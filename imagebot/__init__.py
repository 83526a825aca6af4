"""imagebot keeps GitOps environment repos on the right container image versions."""

from __future__ import annotations

__version__ = "0.1.0"

"""Credential sources: Docker config, env vars, files, and cloud token exchanges.

``provider_for(sources, http=..., env=..., home=...)`` builds the one provider the
registry client asks; see docs/credentials.md.
"""

from __future__ import annotations

from imagebot.registry.providers.factory import provider_for

__all__ = ["provider_for"]

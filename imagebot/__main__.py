from __future__ import annotations

from imagebot.cli.main import main

raise SystemExit(main())

#!/usr/bin/env bash
# The test command: installs everything (scripts/setup.sh), then runs the whole suite
# against a real registry and real git. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One worker per core unless the caller says otherwise (-n 0 runs in one process).
exec .venv/bin/python -m pytest -n "${IMAGEBOT_TEST_WORKERS:-auto}" "$@"

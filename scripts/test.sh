#!/usr/bin/env bash
# The test command: installs everything (scripts/setup.sh), then runs the whole suite
# against a real registry and real git. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"

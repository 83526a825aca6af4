#!/usr/bin/env bash
# The main job: installs everything, then runs the full loop against a real local
# registry and a real git remote (see demo/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python demo/demo.py

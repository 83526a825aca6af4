#!/usr/bin/env bash
# The test command: installs everything (scripts/setup.sh), then runs the whole suite
# against a real registry and real git. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The tests write thousands of git objects, registry blobs and SQLite pages; on a slow disk
# they wait on it more than they compute. Their temporary files go to memory (/dev/shm)
# where the machine has it, and are removed afterwards.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  TMPDIR="$(mktemp -d /dev/shm/imagebot-tests.XXXXXX)"
  export TMPDIR
  trap 'rm -rf "$TMPDIR"' EXIT
fi
# One worker per core unless the caller says otherwise (-n 0 runs in one process); a worker
# that runs out of tests takes some of another's, so a slow test late in a worker's share
# does not leave the other core idle.
.venv/bin/python -m pytest -n "${IMAGEBOT_TEST_WORKERS:-auto}" --dist worksteal "$@"

#!/usr/bin/env bash
# Installs what imagebot's demo and tests need on a fresh Debian machine:
# the CNCF Distribution registry, skopeo, git, gpg and ssh-keygen (signed commits) from
# Debian, and a venv with imagebot.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg_cmd in docker-registry:docker-registry skopeo:skopeo git:git gnupg:gpg \
  openssh-client:ssh-keygen; do
  command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || missing+=("${pkg_cmd%%:*}")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]} from Debian" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian package starts a system registry on :5000; imagebot's demo and tests start
# their own on free ports, so that one is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# The status page's browser test: Debian's Chromium and its driver, and axe-core from npm
# (into the venv, where the test looks for it).
browser=()
command -v chromium >/dev/null 2>&1 || browser+=(chromium)
command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
command -v npm >/dev/null 2>&1 || browser+=(npm)
if ((${#browser[@]})); then
  echo "setup: installing ${browser[*]} from Debian" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${browser[@]}" >/dev/null
fi
if [ ! -f .venv/node/node_modules/axe-core/axe.min.js ]; then
  npm install --silent --no-save --no-audit --no-fund --prefix .venv/node axe-core@4 >/dev/null
fi

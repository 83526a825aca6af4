#!/usr/bin/env bash
# Builds imagebot's container image from the Dockerfile with podman, then runs it as users
# will (scripts/image_smoke.py): read-only root filesystem, user 10001, `imagebot serve`
# against a registry and a git remote on the host network.
#
#   bash scripts/image.sh            # build + smoke test; prints the image size
#
# Runs as root on Debian. No container registry is reachable here, so the base image is
# built with debootstrap (Debian bookworm, minbase, python3) and imported with
# `podman import`; the Dockerfile's default BASE stays the public slim Python image.
# podman's settings (runc, cgroupfs, ulimits) go to a containers.conf in the scratch
# directory, never to /etc.
set -euo pipefail
cd "$(dirname "$0")/.."

SCRATCH="${IMAGEBOT_IMAGE_SCRATCH:-/var/tmp/imagebot-image}"
TAG="${IMAGEBOT_IMAGE_TAG:-localhost/imagebot:dev}"
BASE="localhost/imagebot-base:bookworm"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$SCRATCH"

missing=()
for pkg_cmd in podman:podman buildah:buildah runc:runc debootstrap:debootstrap uidmap:newuidmap; do
  command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || missing+=("${pkg_cmd%%:*}")
done
if ((${#missing[@]})); then
  echo "image: installing ${missing[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/setup.sh # the smoke test uses the repository's test helpers and its venv

# runc and cgroupfs work in the sandboxes CI runs in (no systemd); ulimits at or under the
# machine's hard limits, since podman's defaults (a million open files and processes) ask for
# more than such a sandbox allows, and `podman build` needs them given explicitly.
# (runc cannot give a container more processes than the kernel has pids.)
limit() { local hard="$1" cap="$2"; { [ "$hard" = unlimited ] || ((hard > cap)); } && hard="$cap"; echo "$hard"; }
nofile="$(limit "$(ulimit -Hn)" 65536)"
nproc="$(limit "$(ulimit -Hu)" "$(cat /proc/sys/kernel/pid_max)")"
cat >"$SCRATCH/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$SCRATCH/containers.conf"

started=$SECONDS
if ! podman image exists "$BASE"; then
  echo "image: building the base image with debootstrap ($SUITE, minbase + python3)" >&2
  rm -rf "$SCRATCH/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$SUITE" "$SCRATCH/rootfs" "$MIRROR" >"$SCRATCH/debootstrap.log"
  root="$SCRATCH/rootfs"
  # python under the name the official image has it.
  ln -sf python3 "$root/usr/bin/python"
  # As Debian's slim images: no documentation, manuals or translations, now or from later
  # installs (dpkg path excludes), no package lists or downloaded packages.
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF2'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF2
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* \
    "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  tar -C "$SCRATCH/rootfs" -c . | podman import --change 'CMD ["python3"]' - "$BASE" >/dev/null
fi

# Networks that intercept TLS need the host's CA bundle at build time (pip); it is mounted,
# never copied into a layer.
ca_mount=()
[ -f /etc/ssl/certs/ca-certificates.crt ] &&
  ca_mount=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
echo "image: podman build -t $TAG --build-arg BASE=$BASE" >&2
podman build --quiet --network host --ulimit "nofile=$nofile:$nofile" \
  --ulimit "nproc=$nproc:$nproc" --build-arg "BASE=$BASE" "${ca_mount[@]}" -t "$TAG" . >/dev/null
echo "image: built in $((SECONDS - started)) s" >&2

size=$(podman image inspect "$TAG" --format '{{.Size}}')
mb=$((size / 1000000))
verdict="met"
((mb <= 180)) || verdict="NOT MET"
echo "image $TAG: ${mb} MB"
echo "budget <= 180 MB: $verdict"

# What the image must not hold: a compiler, a package manager, perl, pip (nor its cache),
# tests. The image holds no ls or grep to look with: its files are read from the host.
root="$(podman image mount "$TAG")"
unexpected=()
for p in usr/bin/gcc usr/bin/cc usr/bin/apt-get usr/bin/dpkg usr/bin/perl root/.cache/pip tmp/.cache/pip src/tests; do
  [ -e "$root/$p" ] && unexpected+=("/$p")
done
for p in "$root"/venv/lib/python3*/site-packages/{pip,setuptools,tests}; do
  [ -e "$p" ] && unexpected+=("${p#"$root"}")
done
podman image unmount "$TAG" >/dev/null
if ((${#unexpected[@]})); then
  echo "image: unexpected ${unexpected[*]}" >&2
  exit 1
fi
echo "image: no compiler, no package manager, no perl, no pip, no tests"

.venv/bin/python scripts/image_smoke.py --image "$TAG"


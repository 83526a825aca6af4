#!/bin/sh
# Assembles the root filesystem of imagebot's runtime image in the directory $1; run by the
# Dockerfile's `rootfs` stage, on the base image with git, openssh-client, ca-certificates,
# tzdata and /venv installed. Only what imagebot runs is copied: python with the venv, git
# (the commands imagebot runs are built into the `git` binary, plus the https transport),
# ssh and ssh-keygen (git over ssh, SSH commit signing), pgrep (a git command that outlives
# its timeout is killed with the transport helpers it started, which GitPython finds with
# pgrep; without it they would linger), /bin/sh — with the Debian packages
# of every library they load (found with ldd, as the official Python images find theirs),
# /usr/local (where the slim Python image keeps python), and /etc. Left behind: apt and dpkg,
# perl (git needs it only for commands imagebot never runs), git's servers and other
# protocols, docs, manuals, locales, Python's test suites and build tools. The dpkg records
# of the copied packages go along, so image scanners still see what the image holds.
set -eu
root="$1"

venv_python=/venv/bin/python3
programs="$venv_python /usr/lib/git-core/git /usr/lib/git-core/git-remote-http /usr/bin/ssh
  /usr/bin/ssh-keygen /usr/bin/pgrep /bin/sh"
extensions="$(find /venv /usr/local /usr/lib/python3* -name '*.so*' -type f 2>/dev/null || true)"
# shellcheck disable=SC2086 # word splitting wanted: lists of paths without spaces
libraries="$(ldd $programs $extensions 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)"

# The package of each file and of each link on the way to it (the venv's python3 ->
# /usr/bin/python3 -> python3.11). On merged-/usr Debian, dpkg may record /lib/... for what
# ldd reports as /usr/lib/...: each file is looked up under both names. Files of no package
# (/usr/local, /venv) are skipped.
paths() {
  for path in "$@"; do
    while :; do
      path="$(cd "${path%/*}" && pwd -P)/${path##*/}"
      echo "$path" && echo "${path#/usr}"
      [ -L "$path" ] || break
      target="$(readlink "$path")"
      case "$target" in /*) path="$target" ;; *) path="${path%/*}/$target" ;; esac
    done
  done
}
# shellcheck disable=SC2086
packages="$(paths $programs $extensions $libraries | sort -u | xargs dpkg-query --search 2>/dev/null |
  grep -v '^diversion' | sed -n 's|: /.*||p' | tr ',' '\n' | sed 's/:.*//; s/ //g' | sort -u)"
# Data, not code: the base system's files, the CA certificates, the time zones (zoneinfo),
# the C.UTF-8 locale and ldconfig (libc-bin), and sh itself.
packages="$(echo $packages base-files ca-certificates tzdata libc-bin dash | tr ' ' '\n' | sort -u)"

# Not copied: what the base mounts at run time, docs, git's servers (daemon, http-backend,
# shell), its dumb-HTTP push, IMAP, scalar and the helper of its shell-script commands, ssh's
# agent, file copy and hardware-key helpers, Python's test suites, IDE and build tools, and
# glibc's character set converters (Python has its own; git needs them only for commits in
# a legacy encoding).
leave_out='^/etc/(hosts|hostname|resolv\.conf)$|^/usr/share/(doc|man|info|locale|lintian|bug|perl5|gitweb)/'
leave_out="$leave_out"'|/git-core/(git-daemon|git-http-backend|git-http-push|git-http-fetch|git-imap-send|git-shell|scalar|git-sh-i18n--envsubst)$'
leave_out="$leave_out"'|^/usr/bin/(git-shell|scalar|scp|sftp|ssh-add|ssh-agent|ssh-keyscan)$|^/usr/lib/openssh/'
leave_out="$leave_out"'|/python3[.0-9]*/(test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|distutils)/|/gconv/'
# The slim Python image's own pip, setuptools and wheel (the venv has its packages).
leave_out="$leave_out"'|^/usr/local/lib/python3[.0-9]*/site-packages/|^/usr/local/bin/(pip|wheel)'

mkdir -p "$root"
# The merged-/usr symlinks (/bin -> usr/bin...) as the base has them.
for top in bin lib lib32 lib64 sbin; do
  if [ -L "/$top" ]; then cp -a "/$top" "$root/" && mkdir -p "$root/$(readlink "/$top")"; fi
done
# shellcheck disable=SC2086
{
  dpkg-query --listfiles $packages
  find /usr/local /etc /usr/lib/python3* # and the bytecode Debian compiles on install
  # The one coreutils program imagebot runs: git's GIT_ASKPASS=true, so git never asks for
  # a password (coreutils itself is 18 MB).
  echo /usr/bin/true
} | while read -r path; do
  # Directories come along with their files (an entry for /lib would replace the symlink).
  if [ -L "$path" ] || { [ -e "$path" ] && [ ! -d "$path" ]; }; then echo "$path"; fi
done | grep -vE "$leave_out" |
  sed 's|^/||' | sort -u | tar -C / -c --no-recursion --files-from=- | tar -x --keep-directory-symlink -C "$root"

# /usr/bin/git is a second copy of git-core's git (3.7 MB); a symlink does the same.
ln -sf ../lib/git-core/git "$root/usr/bin/git"
# shellcheck disable=SC2086
mkdir -p "$root/var/lib/dpkg" && dpkg-query --status $packages >"$root/var/lib/dpkg/status"
ldconfig -r "$root"
mkdir -p "$root/tmp" "$root/var/tmp" "$root/var/cache/imagebot" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp" "$root/var/tmp"
chown 10001:10001 "$root/var/cache/imagebot"

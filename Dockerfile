# imagebot container image: `imagebot serve` (and every other command) with git, non-root.
# Choices are explained in docs/daemon.md ("The container image").

# BASE: any Debian bookworm image with python3 and its venv module. scripts/image.sh builds
# one with debootstrap where no container registry is reachable. The default is pinned by
# digest: a tag moves, and a rebuild must not pick up a different Python or Debian
# silently. This digest of the official python:3.11-slim-bookworm is taken from published
# references (it was not pulled where this file was written); refresh it with
# `docker buildx imagetools inspect python:3.11-slim-bookworm` when updating.
ARG BASE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# Build stage: a wheel and its dependencies, built once, nothing of it kept but /venv.
FROM ${BASE} AS build
# pip trusts the system CA bundle (a network that intercepts TLS mounts its bundle there at
# build time, see scripts/image.sh), in this stage only.
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
# binutils: strip, below.
RUN apt-get update && apt-get install -y --no-install-recommends binutils && python3 -m venv /venv
COPY pyproject.toml README.md constraints.txt /src/
COPY imagebot /src/imagebot
# constraints.txt pins every dependency to the version the release was tested with.
# pip and setuptools are build tools: the runtime venv keeps neither. botocore ships the API
# models of every AWS service (33 MB); imagebot calls ECR, and STS and SSO for credentials.
# Some wheels ship their own tests, and extension modules with symbol tables (11 MB) that
# only a debugger reads.
RUN /venv/bin/pip install --constraint /src/constraints.txt /src \
 && /venv/bin/pip uninstall --yes pip setuptools >/dev/null \
 && cd /venv/lib/python3*/site-packages \
 && find botocore/data -mindepth 1 -maxdepth 1 -type d \
      ! -name ecr ! -name ecr-public ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} + \
 && find . -depth -type d \( -name tests -o -name test \) -exec rm -rf {} + \
 && find . -name '*.so' -exec strip --strip-unneeded {} +

# Root filesystem stage: the base with git and ssh, from which scripts/image_rootfs.sh copies
# only what imagebot runs and the libraries it loads into /rootfs. A later layer cannot make
# an earlier one smaller, so the runtime image starts empty and takes /rootfs as one layer:
# no apt, no dpkg, no perl, no coreutils; python, git, ssh, ssh-keygen, pgrep and sh.
FROM ${BASE} AS rootfs
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates tzdata procps \
 && groupadd --gid 10001 imagebot \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin imagebot
COPY --from=build /venv /venv
COPY scripts/image_rootfs.sh /tmp/
RUN sh /tmp/image_rootfs.sh /rootfs

# Runtime stage: glibc Debian (the wheels of cryptography, regex, pyahocorasick and PyYAML's
# libyaml run as published), python, the venv, git and ssh for the environment repos.
FROM scratch
COPY --from=rootfs /rootfs /
COPY --from=build /venv /venv
ENV PATH=/venv/bin:/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    IMAGEBOT_CACHE_DIR=/var/cache/imagebot \
    IMAGEBOT_LOG_FORMAT=json
# The only writable paths at run time: the cache and /tmp (volumes in the chart), so the
# root filesystem can be mounted read-only.
VOLUME ["/var/cache/imagebot", "/tmp"]
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["imagebot"]
CMD ["serve", "--policies", "/etc/imagebot/policies", "--listen", "0.0.0.0:8080"]

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
RUN python3 -m venv /venv
COPY pyproject.toml README.md constraints.txt /src/
COPY imagebot /src/imagebot
# constraints.txt pins every dependency to the version the release was tested with.
# pip and setuptools are build tools: the runtime venv keeps neither. botocore ships the API
# models of every AWS service (33 MB); imagebot calls ECR, and STS and SSO for credentials.
RUN /venv/bin/pip install --constraint /src/constraints.txt /src \
 && /venv/bin/pip uninstall --yes pip setuptools >/dev/null \
 && find /venv/lib/python3*/site-packages/botocore/data -mindepth 1 -maxdepth 1 -type d \
      ! -name ecr ! -name ecr-public ! -name sts ! -name sso ! -name sso-oidc -exec rm -rf {} +

# Runtime stage: Debian slim (glibc: the wheels of cryptography, regex, pyahocorasick and
# PyYAML's libyaml install as published) plus git and ssh for the environment repos.
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 imagebot \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin imagebot
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    IMAGEBOT_CACHE_DIR=/var/cache/imagebot \
    IMAGEBOT_LOG_FORMAT=json
# The only writable paths at run time: the cache and /tmp (volumes in the chart), so the
# root filesystem can be mounted read-only.
RUN mkdir -p /var/cache/imagebot && chown 10001:10001 /var/cache/imagebot
VOLUME ["/var/cache/imagebot", "/tmp"]
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["imagebot"]
CMD ["serve", "--policies", "/etc/imagebot/policies", "--listen", "0.0.0.0:8080"]

# One image for every Agora service; the command picks the service:
#   docker run agora agora-serve catalog
#
# BASE_IMAGE must be a Debian-like image with python3 (3.11+) and its venv module.
# Without a registry, build one with tools/base-image.sh and pass it here.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: the virtualenv
FROM ${BASE_IMAGE} AS build
# tools/build-image.sh prunes the untagged images carrying this label after a build.
LABEL org.agora.image=build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/agora
WORKDIR /src
# Dependencies first: this layer is reused while only the services' code changes.
COPY pyproject.toml constraints.txt README.m[d] ./
RUN mkdir -p services && touch services/__init__.py \
    && /opt/agora/bin/pip install --quiet -c constraints.txt . \
    && /opt/agora/bin/pip uninstall --quiet --yes agora
COPY services ./services
# pip, setuptools and the bytecode of the build are left behind with this stage.
RUN /opt/agora/bin/pip install --quiet --no-deps -c constraints.txt . \
    && /opt/agora/bin/pip uninstall --quiet --yes pip setuptools

# ---------------------------------------------------------------- runtime
FROM ${BASE_IMAGE}
LABEL org.agora.image=runtime
ARG UID=10001
# Runs under a read-only root filesystem: only /tmp and the metrics directory are
# written (Kubernetes mounts emptyDirs there; `docker run --read-only --tmpfs` does too).
ENV PATH=/opt/agora/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROMETHEUS_MULTIPROC_DIR=/run/agora/metrics
# The metrics directory is world-writable and sticky like /tmp: `docker run --tmpfs`
# gives the tmpfs the mode of the directory it covers (but not its owner).
RUN useradd --system --uid ${UID} --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin agora \
    && install -d -m 1777 /run/agora/metrics
COPY --from=build /opt/agora /opt/agora
USER ${UID}:${UID}
EXPOSE 8000
# Exec form: gunicorn's master is PID 1 and receives SIGTERM itself.
CMD ["agora-serve", "catalog"]

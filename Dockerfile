# syntax=docker/dockerfile:1
# polyswarm-kit: one image for every long-running command. The entry point is the microengine; compose
# (deploy/compose.yaml) or `docker run --entrypoint` picks balancemanager, polyswarmd-devnet and the rest.
# Build from the repository root: docker build -t polyswarm-kit .
ARG PYTHON_VERSION=3.12

# --- build: install the package and its dependencies into a virtualenv -------------------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY packaging ./packaging
# The devnet extra too, so the same image serves the local devnet of the compose file, and the redis extra
# for microengine --scan-queue and the worker command; an engine's image
# adds its own backend package on top (FROM polyswarm-kit, then pip install your engine).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ".[devnet,redis]" \
    && /opt/venv/bin/pip install --no-cache-dir ./packaging/polyswarm-client

# --- run: the virtualenv only, as an unprivileged user ------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    STATE_DIR=/var/lib/polyswarm \
    METRICS_ADDR=0.0.0.0:9100 \
    SHUTDOWN_GRACE=8
# SHUTDOWN_GRACE=8: a plain `docker stop` kills after 10 s, so the drain must end before that. Give
# longer grace together with a longer stop timeout (compose: stop_grace_period; docker stop --time).
RUN groupadd --system --gid 10001 polyswarm \
    && useradd --system --uid 10001 --gid polyswarm --home-dir /var/lib/polyswarm --no-create-home \
       --shell /usr/sbin/nologin polyswarm \
    && mkdir -p /var/lib/polyswarm \
    && chown polyswarm:polyswarm /var/lib/polyswarm
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/polyswarm
# Pending reveals and settles, pinned contracts, the balance manager's transfer journal: keep them.
VOLUME ["/var/lib/polyswarm"]
EXPOSE 9100
STOPSIGNAL SIGTERM
# /readyz on METRICS_ADDR, without curl: exit 0 ready, 1 not.
HEALTHCHECK --interval=15s --timeout=6s --start-period=60s --retries=3 CMD ["polyswarm-probe", "--timeout", "5"]
ENTRYPOINT ["microengine"]

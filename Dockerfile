# nimbus in a container: `nimbus serve` with two workers on port 8000.
#
#   docker build -t nimbus .
#   docker run -p 8000:8000 -v nimbus-data:/data nimbus           # SQLite (and key) in /data
#
# Several replicas share one PostgreSQL and one signing key:
#   docker run -p 8000:8000 \
#     -e NIMBUS_DATABASE_URL=postgresql://nimbus:secret@db.internal:5432/nimbus \
#     -e NIMBUS_SECRET_KEY=...  nimbus                               # at least 32 bytes
# Each process migrates the schema on start (under an advisory lock), so replicas may start
# together. Any NIMBUS_* variable of docs/configuration.md can be passed the same way.
#
# Both stages use the same image: the virtualenv's interpreter is the base image's
# /usr/local/bin/python3.12, so the environment works unchanged once copied.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
# The uv version scripts/install uses.
ARG UV_VERSION=0.13.8
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON=python3.12 \
    UV_PYTHON_DOWNLOADS=never
RUN pip install "uv==${UV_VERSION}"
WORKDIR /app
# The dependencies first, from the lock file alone, so that a change to the source reuses
# this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --extra postgres --extra tracing --no-install-project
# Then nimbus itself, as a regular (non-editable) install: the image needs no source tree.
# README.md is the package's readme, which the build reads.
COPY README.md ./
COPY src ./src
RUN uv sync --frozen --no-dev --extra postgres --extra tracing --no-editable

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 nimbus \
    && useradd --system --uid 10001 --gid nimbus --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin nimbus \
    && mkdir /data \
    && chown nimbus:nimbus /data
# Owned by root: the server cannot change its own code.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NIMBUS_DATA_DIR=/data
# The SQLite database and the generated signing key, when those are used.
VOLUME /data
# Not /data: nimbus reads a .env file from its working directory.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only (GET /health); GET /health/ready also checks the database.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["nimbus", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

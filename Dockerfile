# syntax=docker/dockerfile:1
# The orchestrator's production image: worker, gateway, migrations and CLI (docker-compose.yml
# runs each). It holds only what production runs: the dependencies of uv.lock (versions and
# hashes checked) without the `dev` extra (Temporal CLI, test server, embedded PostgreSQL, SMTP
# sink: ~300 MB) nor `test`; no uv, pip or compiler left; it runs as an unprivileged user.
#
#   docker build -t contracting .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/contracting \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN python -m pip install --no-cache-dir 'uv==0.13.9'
WORKDIR /src
# The dependencies alone first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-editable
# Then the project itself, installed as a wheel (not editable) into the same venv.
COPY README.md settings.py worker.py ./
COPY schemas schemas
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY codec codec
COPY db db
COPY starter starter
COPY observability observability
RUN uv sync --locked --no-editable

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/contracting/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Nothing installs packages at run time: pip and its build tools go.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
    && groupadd --system --gid 10001 contracting \
    && useradd --system --no-create-home --uid 10001 --gid 10001 contracting
COPY --from=build /opt/contracting /opt/contracting
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9464
CMD ["contracting", "worker"]

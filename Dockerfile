# The orchestrator's image: worker, gateway and CLI (`docker-compose.yml` runs each).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY settings.py worker.py ./
COPY schemas schemas
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY codec codec
COPY db db
COPY starter starter
RUN pip install --no-cache-dir . && useradd --system contracting
USER contracting
CMD ["contracting", "worker"]

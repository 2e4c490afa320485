# AeroVision: one image for every role (api, worker, notifier, serve).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AEROVISION_DATA_DIR=/var/lib/aerovision \
    AEROVISION_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /var/lib/aerovision --create-home aerovision

USER aerovision
EXPOSE 8888

# Liveness of the HTTP API; worker and notifier containers override it (see deploy/compose.yaml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8888/api/v1/version', timeout=4).status == 200 else 1)"

CMD ["aerovision", "serve"]

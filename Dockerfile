# gowasm-exporter. It needs a Chromium with remote debugging to attach to: see docker-compose.yml
# (the exporter shares the browser's network namespace, because headless Chrome >= 126 binds
# DevTools to 127.0.0.1 only) and docs/operations.md.
#
#   docker build -t gowasm-exporter .
#   docker run --network container:<chromium> gowasm-exporter --cdp http://127.0.0.1:9222
FROM python:3.11-slim

# Only what the wheel is built from (pyproject.toml [tool.hatch.build...]): the daemon package and
# the JS shim it injects, plus README.md, the package's readme. .dockerignore keeps the rest out.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY daemon/ daemon/
COPY instrument/manifest.json instrument/
COPY instrument/src/ instrument/src/
RUN pip install --no-cache-dir . \
    && rm -rf /src

RUN useradd --system --uid 10001 --no-create-home exporter
USER 10001
WORKDIR /

# In a container, loopback is useless to Prometheus: listen on every interface by default (a
# --listen flag still wins).
ENV GOWASM_EXPORTER_LISTEN=0.0.0.0:9464 \
    PYTHONUNBUFFERED=1
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["gowasm-exporter"]

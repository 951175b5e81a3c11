# zhie: the HTTP service with its bundled models, on ONNX Runtime (CPU). docs/batch.md#container
#   docker build -t zhie:0.1.0 .
#   docker run --rm -p 8000:8000 -e ZHIE_WORKERS=2 zhie:0.1.0
# Every server setting is an environment variable ZHIE_<SETTING> (src/zhie/server/settings.py).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# -- build: a virtual environment with zhie and its serving dependencies only (no torch, no compilers kept)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/zhie
COPY pyproject.toml README.md ./
COPY src ./src
# the bundled NER, sentiment and extraction models ship inside the package (src/zhie/models/bundled)
RUN /opt/zhie/bin/pip install --no-cache-dir . \
 && /opt/zhie/bin/python -c "import sys; from zhie.models.bundle import bundled_models; m = set(bundled_models()); sys.exit(0 if {'ner', 'sentiment', 'extract'} <= m else 'bundled models missing: %s' % m)"

# -- run: the slim base, the environment copied over, a non-root user
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 zhie \
 && useradd --system --uid 10001 --gid zhie --create-home --home-dir /home/zhie --shell /usr/sbin/nologin zhie
COPY --from=build /opt/zhie /opt/zhie
# ZHIE_CACHE_DIR: where the first start on a machine writes the pre-packed weights (keyed by CPU, so not
# made at build time); put it on a volume (or /tmp) when the root filesystem is read-only
ENV PATH=/opt/zhie/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ZHIE_HOST=0.0.0.0 \
    ZHIE_PORT=8000 \
    ZHIE_WORKERS=1 \
    ZHIE_CACHE_DIR=/tmp/zhie-cache
USER 10001:10001
WORKDIR /home/zhie
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ZHIE_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["zhie", "serve"]

# Berth: one image for the server and the worker; the command picks which.
#
#   docker build -t berth .
#   docker run berth server            # gunicorn on :8080 (the default)
#   docker run berth worker            # a Celery worker (python -m worker)
#   docker run berth berth admin token create --role admin --name ops
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 berth
WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p catalog server worker \
    && touch catalog/__init__.py server/__init__.py worker/__init__.py \
    && pip install . \
    && pip uninstall -y berth

COPY catalog ./catalog
COPY server ./server
COPY worker ./worker
COPY universe ./universe
RUN pip install --no-deps . && chown -R berth /app

# The entrypoint: `server` (default) or `worker`; anything else runs as given.
RUN printf '%s\n' '#!/bin/sh' 'set -e' 'case "$1" in' \
  '  server) shift; exec gunicorn -c python:server.gunicorn_conf server.wsgi:app --bind "0.0.0.0:${BERTH_PORT:-8080}" --access-logfile - "$@" ;;' \
  '  worker) shift; exec python -m worker "$@" ;;' \
  '  *) exec "$@" ;;' 'esac' > /usr/local/bin/berth-entrypoint
RUN chmod 0755 /usr/local/bin/berth-entrypoint

ENV BERTH_UNIVERSE_DIR=/app/universe
USER berth
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
ENTRYPOINT ["berth-entrypoint"]
CMD ["server"]

# syntax=docker/dockerfile:1
# Diploi: one image for every process; the first argument picks which (deploy/entrypoint):
#   docker run IMAGE web | worker | watcher | migrate
# The final stage holds the runtime requirements only (no compilers, no test tools),
# runs as a fixed non-root user, and works with a read-only root filesystem: the only
# writable paths it needs are /tmp and $DIPLOI_DATA_DIR (volumes in deploy/kubernetes/).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY requirements.txt deploy/runtime-requirements ./
RUN python -m venv /opt/diploi \
 && ./runtime-requirements requirements.txt > runtime.txt \
 && /opt/diploi/bin/pip install --no-compile -r runtime.txt \
 && /opt/diploi/bin/pip check
COPY . /app
WORKDIR /app
# Static files are collected (and compressed for whitenoise) at build time, and every
# module compiled, so nothing is written at run time.
RUN SECRET_KEY=collectstatic-only DIPLOI_DATA_DIR=/tmp/build-data STATIC_ROOT=/app/static-root \
    /opt/diploi/bin/python manage.py collectstatic --noinput --verbosity 0 \
 && /opt/diploi/bin/python -m compileall -q /app /opt/diploi

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 diploi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin diploi \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/diploi
COPY --from=build /opt/diploi /opt/diploi
COPY --from=build /app /app
ENV PATH=/opt/diploi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATIC_ROOT=/app/static-root \
    DIPLOI_DATA_DIR=/var/lib/diploi \
    HEALTH_PORT=8081
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8081 2222
ENTRYPOINT ["/app/deploy/entrypoint"]
CMD ["web"]

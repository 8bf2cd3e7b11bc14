# Production image. The same install path as `make run`: pip installs the runtime lock file
# (requirements/runtime.txt: every transitive dependency pinned, hashes required), then the
# project itself without dependencies. Migrations are a separate command:
#   docker run --rm -e DATABASE_URL=... wangge wangge prestart --no-seed
#   docker run -e DATABASE_URL=... -p 8000:8000 wangge
# The console (console/): npm packages from the committed lock file, then the same build as
# `make console`.
FROM node:20-slim AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console/build.mjs ./
COPY console/src ./src
RUN node build.mjs

# The field app 网格通 (field/): the same, as `make field`.
FROM node:20-slim AS field
WORKDIR /field
COPY field/package.json field/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY field/build.mjs ./
COPY field/src ./src
RUN node build.mjs

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt
COPY app ./app
COPY geo ./geo
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /srv/wangge wangge
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/wangge
# Alembic reads its settings from pyproject.toml next to migrations/.
COPY --chown=wangge pyproject.toml ./
COPY --chown=wangge migrations ./migrations
COPY --from=console /console/dist ./console
COPY --from=field /field/dist ./field
# Workers: WEB_CONCURRENCY when set, else one per core the container may use (nproc honours the
# CPU affinity docker's --cpuset-cpus gives it).
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 ENV=production PORT=8000 \
    WANGGE_CONSOLE_DIR=/srv/wangge/console WANGGE_FIELD_DIR=/srv/wangge/field
USER wangge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
CMD ["sh", "-c", "exec uvicorn app.main:app --host 0.0.0.0 --port ${PORT} --workers ${WEB_CONCURRENCY:-$(nproc)} --no-proxy-headers --no-access-log"]

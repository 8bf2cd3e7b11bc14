#!/usr/bin/env bash
# `make run`: database (local cluster unless DATABASE_URL is set), migrations, demo data, server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/localdb.sh start
  scripts/localdb.sh ensuredb wangge
  DATABASE_URL=$(scripts/localdb.sh url wangge)
  export DATABASE_URL
fi
.venv/bin/wangge prestart
# Workers: WEB_CONCURRENCY, else one per core (each worker is one Python process: one core's
# worth of CPU at most; the database's pools are per worker, see docs/settings.md).
WEB_CONCURRENCY=${WEB_CONCURRENCY:-$(nproc 2>/dev/null || echo 1)}
echo "wangge: serving on http://${HOST:-0.0.0.0}:${PORT:-8000}  with $WEB_CONCURRENCY workers (docs at /docs; Ctrl-C stops the server, 'make stop' the database)"
exec .venv/bin/uvicorn app.main:app --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
  --workers "$WEB_CONCURRENCY" --no-access-log --no-proxy-headers

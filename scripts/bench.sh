#!/usr/bin/env bash
# `make bench`: every bench/bench_*.py on a throwaway database, e.g. `make bench ARGS=--quick`.
# BENCH_DATABASE_URL may point at an empty throwaway database of your own (it gets truncated);
# otherwise the project-local cluster is used (started and stopped again if it was down).
# Arguments go to every bench script. Exit status: 1 when any bench failed.
set -euo pipefail
cd "$(dirname "$0")/.."
started=no
db=""
cleanup() {
  if [ -n "$db" ]; then scripts/localdb.sh dropdb "$db" || true; fi
  if [ "$started" = yes ]; then scripts/localdb.sh stop || true; fi
}
trap cleanup EXIT
if [ -z "${BENCH_DATABASE_URL:-}" ]; then
  scripts/localdb.sh status || { scripts/localdb.sh start; started=yes; }
  db="wangge_bench_$$"
  scripts/localdb.sh createdb "$db"
  BENCH_DATABASE_URL=$(scripts/localdb.sh url "$db")
fi
export BENCH_DATABASE_URL
# bench_tiles.py compares our tiles with tipg, which pins its own FastAPI and pydantic: it gets a
# virtualenv of its own (never the app's, never made by `make test`).
TIPG_PINS=("tipg==1.6.1" "uvicorn==0.54.0")
if ! .venv-bench/bin/python -c 'import tipg, sys; sys.exit(tipg.__version__ != "1.6.1")' 2>/dev/null; then
  echo "bench: creating .venv-bench with ${TIPG_PINS[*]}" >&2
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check "${TIPG_PINS[@]}"
fi
unset DATABASE_URL WANGGE_DATABASE_URL
rc=0
for bench in bench/bench_*.py; do
  echo "== $bench"
  .venv/bin/python "$bench" "$@" || { echo "== $bench FAILED" >&2; rc=1; }
done
exit $rc

#!/usr/bin/env bash
# `make test`: a throwaway database, then the whole suite. Exit status is pytest's.
# TEST_DATABASE_URL may point at a throwaway database of your own; DATABASE_URL is never used by tests.
set -euo pipefail
cd "$(dirname "$0")/.."
started=no
db=""
cleanup() {
  if [ -n "$db" ]; then scripts/localdb.sh dropdb "$db" || true; fi
  if [ "$started" = yes ]; then scripts/localdb.sh stop || true; fi
}
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  scripts/localdb.sh status || { scripts/localdb.sh start; started=yes; }
  db="wangge_test_$$"
  scripts/localdb.sh createdb "$db"
  TEST_DATABASE_URL=$(scripts/localdb.sh url "$db")
  trap cleanup EXIT
fi
export TEST_DATABASE_URL
# The OGC API's real-client tests drive GDAL's command-line tools (ogrinfo, ogr2ogr) and
# Debian's QGIS, headless, in its own Python (tests/api/test_gis_token_clients.py).
if ! command -v ogr2ogr >/dev/null || ! command -v ogrinfo >/dev/null \
  || ! /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then
  echo "test: installing gdal-bin and python3-qgis" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq gdal-bin python3-qgis qgis-providers >/dev/null
fi
# The restore drill (tests/ops/test_restore_drill.py) drives pgBackRest.
scripts/backup.sh install
unset DATABASE_URL
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
exit $rc

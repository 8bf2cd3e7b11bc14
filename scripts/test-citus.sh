#!/usr/bin/env bash
# `make test-citus`: the API suite on a Citus cluster. WANGGE_CITUS_URL names the coordinator
# (any database on it; e.g. `scripts/citus.sh up` then `scripts/citus.sh url`), whose workers are
# registered. A fresh database is made on the coordinator and on every worker, migrated,
# distributed (`wangge distribute`), given the demo, distributed again (which spreads the demo's
# districts over the workers), then pytest runs with TEST_DATABASE_URL on it (default: tests/api
# and tests/citus; pass other paths or options as arguments). Exit status is pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${WANGGE_CITUS_URL:?set WANGGE_CITUS_URL to the coordinator, e.g. \$(scripts/citus.sh url)}"
base=${WANGGE_CITUS_URL%/*}
name="wangge_citus_$$"
py=.venv/bin/python
q() { psql "$1" -v ON_ERROR_STOP=1 -qAt -c "$2"; }
have=$(q "$WANGGE_CITUS_URL" "SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'")
if [ "$have" != 1 ]; then
  echo "test-citus: the server at $WANGGE_CITUS_URL has no citus extension installed" >&2
  exit 3
fi
mapfile -t workers < <(q "$WANGGE_CITUS_URL" \
  "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary' ORDER BY nodeport")
if [ ${#workers[@]} -lt 1 ]; then
  echo "test-citus: the coordinator at $WANGGE_CITUS_URL has no workers (citus_add_node)" >&2
  exit 3
fi
user=$(q "$WANGGE_CITUS_URL" "SELECT current_user")
node_url() { echo "postgresql://$user@${1%:*}:${1#*:}/$2"; }
cleanup() {
  for w in "${workers[@]}"; do q "$(node_url "$w" postgres)" "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || true; done
  q "$base/postgres" "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" 2>/dev/null || true
}
trap cleanup EXIT
q "$base/postgres" "CREATE DATABASE \"$name\"" 2>/dev/null
for w in "${workers[@]}"; do
  q "$(node_url "$w" postgres)" "CREATE DATABASE \"$name\"" 2>/dev/null
  q "$(node_url "$w" "$name")" "CREATE EXTENSION citus"
done
url="$base/$name"
q "$url" "CREATE EXTENSION citus"
host=$(q "$WANGGE_CITUS_URL" "SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid = 0" || true)
if [ -n "$host" ]; then q "$url" "SELECT citus_set_coordinator_host('${host%:*}', ${host#*:})" >/dev/null; fi
for w in "${workers[@]}"; do q "$url" "SELECT citus_add_node('${w%:*}', ${w#*:})" >/dev/null; done
q "$url" "CREATE EXTENSION IF NOT EXISTS postgis"
export DATABASE_URL="$url"
.venv/bin/wangge migrate
.venv/bin/wangge distribute
# The demo as the suite's own fixture loads it (ENV=test: no demo residents or disputes, which
# tests/conftest.py never loads either), plus the second district.
ENV=test .venv/bin/wangge seed-demo --second-district
.venv/bin/wangge distribute
# On Citus the hot statements keep PostgreSQL's own plan choice: a forced generic plan of a
# statement that Citus must plan in steps (the intake's CTEs, sync's scope) is refused ("could not
# create distributed plan").
export WANGGE_DB_HOT_GENERIC_PLANS=${WANGGE_DB_HOT_GENERIC_PLANS:-false}
export TEST_DATABASE_URL="$url" WANGGE_CITUS_URL
unset DATABASE_URL
[ $# -gt 0 ] || set -- tests/api tests/citus
set +e
.venv/bin/pytest -p no:cacheprovider "$@"
rc=$?
set -e
exit $rc

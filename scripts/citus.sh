#!/usr/bin/env bash
# A local Citus cluster (a coordinator and two workers) for `make test-citus`, from a Citus that is
# already installed beside the server (this script never builds or downloads Citus).
#   scripts/citus.sh up       init (once) and start the three nodes, register the workers
#   scripts/citus.sh down     stop the three nodes
#   scripts/citus.sh status   exit 0 when the coordinator is up and has two active workers
#   scripts/citus.sh url [DB] print the coordinator's URL (database DB, default postgres)
# Ports: WANGGE_CITUS_PORT (coordinator, 9700), the workers on the next two. Data under
# WANGGE_CITUS_DIR (/var/tmp/citus-wangge): coordinator/, worker1/, worker2/ with server.log each.
# initdb refuses root, so as root the nodes run as the `postgres` system user.
set -euo pipefail
PGVER=${WANGGE_PG_VERSION:-15}
PGBIN=/usr/lib/postgresql/$PGVER/bin
PORT=${WANGGE_CITUS_PORT:-9700}
DIR=${WANGGE_CITUS_DIR:-/var/tmp/citus-wangge}
NODES=(coordinator worker1 worker2)

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

need_citus() {
  local libdir
  libdir=$("$PGBIN/pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$PGVER/lib")
  if [ ! -f "$libdir/citus.so" ] || [ ! -f "/usr/share/postgresql/$PGVER/extension/citus.control" ]; then
    echo "citus: Citus is not installed for PostgreSQL $PGVER ($libdir/citus.so missing)." >&2
    echo "citus: install it beside the server first (this script does not build it)." >&2
    exit 3
  fi
  if [ ! -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ]; then
    echo "citus: PostGIS is not installed for PostgreSQL $PGVER" >&2
    exit 3
  fi
}

port_of() { echo $((PORT + $1)); }
sql() { psql -h 127.0.0.1 -p "$1" -U wangge -d "${3:-postgres}" -v ON_ERROR_STOP=1 -qAt -c "$2"; }

up() {
  need_citus
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  local i
  for i in 0 1 2; do
    local d="$DIR/${NODES[$i]}" p
    p=$(port_of "$i")
    if [ ! -f "$d/PG_VERSION" ]; then
      as_owner mkdir -p "$d"
      as_owner chmod 700 "$d"
      as_owner "$PGBIN/initdb" -D "$d" -U wangge -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat <<CONF | as_owner tee -a "$d/postgresql.conf" >/dev/null
shared_preload_libraries = 'citus'
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = '$d'
max_connections = 300
max_prepared_transactions = 100
fsync = ${WANGGE_PG_FSYNC:-off}
synchronous_commit = off
citus.max_client_connections = 250
CONF
    fi
    if ! as_owner "$PGBIN/pg_ctl" -D "$d" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$d" -l "$d/server.log" -w -t 60 start >/dev/null
    fi
  done
  for i in 0 1 2; do
    local p
    p=$(port_of "$i")
    sql "$p" "CREATE EXTENSION IF NOT EXISTS citus"
    sql "$p" "CREATE EXTENSION IF NOT EXISTS postgis"
  done
  local c
  c=$(port_of 0)
  sql "$c" "SELECT citus_set_coordinator_host('127.0.0.1', $c)" >/dev/null
  for i in 1 2; do
    local p
    p=$(port_of "$i")
    if [ -z "$(sql "$c" "SELECT 1 FROM pg_dist_node WHERE nodeport = $p")" ]; then
      sql "$c" "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
    fi
  done
  echo "citus: coordinator on 127.0.0.1:$c, workers on $(port_of 1) and $(port_of 2) (data in $DIR)" >&2
}

down() {
  local i
  for i in 2 1 0; do
    local d="$DIR/${NODES[$i]}"
    if [ -f "$d/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$d" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null
    fi
  done
  echo "citus: stopped" >&2
}

status() {
  local n
  n=$(sql "$(port_of 0)" "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND isactive AND groupid > 0" 2>/dev/null) || return 1
  [ "$n" -ge 2 ]
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  url) echo "postgresql://wangge@127.0.0.1:$(port_of 0)/${2:-postgres}" ;;
  *) echo "usage: $0 up|down|status|url [DB]" >&2; exit 2 ;;
esac

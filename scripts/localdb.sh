#!/usr/bin/env bash
# Project-local PostgreSQL + PostGIS for `make run` / `make test` when DATABASE_URL is unset.
#   scripts/localdb.sh install        apt-get the server and PostGIS when missing
#   scripts/localdb.sh start          init (once) and start the cluster under .data/pg; reuse it when up
#   scripts/localdb.sh stop           stop the cluster
#   scripts/localdb.sh status         exit 0 when the cluster is up
#   scripts/localdb.sh url DBNAME     print the DATABASE_URL for DBNAME
#   scripts/localdb.sh createdb NAME  (re)create NAME with the postgis extension
#   scripts/localdb.sh dropdb NAME
# initdb refuses root, so as root the cluster runs as the unprivileged `postgres` system user.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PGVER=${WANGGE_PG_VERSION:-15}
# The port: WANGGE_PG_PORT, else the one this checkout's cluster was given, else the first free
# one from 54329 (so two checkouts on one machine do not collide).
port_file="$here/.data/port"
free_port() {
  python3 - <<'PY'
import socket
for port in range(54329, 54429):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        break
PY
}
if [ -n "${WANGGE_PG_PORT:-}" ]; then
  PGPORT=$WANGGE_PG_PORT
elif [ -f "$port_file" ]; then
  PGPORT=$(cat "$port_file")
else
  mkdir -p "$here/.data"
  PGPORT=$(free_port)
  echo "$PGPORT" > "$port_file"
fi
port_busy() {
  python3 - "$1" <<'PY'
import socket, sys
with socket.socket() as s:
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(0)
sys.exit(1)
PY
}
PGBIN=/usr/lib/postgresql/$PGVER/bin
data="$here/.data/pg"
sock="$here/.data/run"

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  local need=()
  [ -x "$PGBIN/initdb" ] || need+=("postgresql-$PGVER")
  [ -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ] || need+=("postgresql-$PGVER-postgis-3")
  command -v psql >/dev/null || need+=("postgresql-client-$PGVER")
  [ ${#need[@]} -eq 0 ] && return 0
  echo "localdb: installing ${need[*]}" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

prepare_dirs() {
  mkdir -p "$here/.data"
  if [ "$(id -u)" = 0 ]; then
    # The postgres user must be able to reach .data/; when the checkout lives somewhere it cannot
    # traverse (e.g. under /root), keep the cluster in /var/tmp and link it into .data/.
    if ! runuser -u postgres -- test -x "$here/.data"; then
      local alt="/var/tmp/wangge-$(echo "$here" | md5sum | cut -c1-12)"
      mkdir -p "$alt"
      chown postgres: "$alt"
      [ -L "$data" ] || ln -sfn "$alt/pg" "$data"
      [ -L "$sock" ] || ln -sfn "$alt/run" "$sock"
      mkdir -p "$alt/pg" "$alt/run"
      chown postgres: "$alt/pg" "$alt/run"
      chmod 700 "$alt/pg"
      return
    fi
    mkdir -p "$data" "$sock"
    chown postgres: "$data" "$sock"
    chmod 700 "$data"
  else
    mkdir -p "$data" "$sock"
    chmod 700 "$data"
  fi
}

is_up() { as_owner "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start() {
  install_packages
  prepare_dirs
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$PGBIN/initdb" -D "$data" -U wangge -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if is_up; then return 0; fi
  if port_busy "$PGPORT" && [ -z "${WANGGE_PG_PORT:-}" ]; then
    # Another checkout's cluster took this port while ours was down: move to a free one.
    PGPORT=$(free_port)
    echo "$PGPORT" > "$port_file"
  fi
  as_owner "$PGBIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $PGPORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=${WANGGE_PG_FSYNC:-on} -c max_connections=200" \
    start >/dev/null
  echo "localdb: PostgreSQL $PGVER up on 127.0.0.1:$PGPORT (data and server.log in .data/pg)" >&2
}

stop() {
  if [ -f "$data/PG_VERSION" ] && is_up; then
    as_owner "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    echo "localdb: stopped" >&2
  fi
}

psql_admin() { psql -h 127.0.0.1 -p "$PGPORT" -U wangge -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  status) is_up ;;
  url) echo "postgresql://wangge@127.0.0.1:$PGPORT/${2:?dbname}" ;;
  createdb)
    name=${2:?dbname}
    psql_admin -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\""
    ;;
  ensuredb)
    name=${2:?dbname}
    if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" ]; then
      psql_admin -c "CREATE DATABASE \"$name\""
    fi
    ;;
  dropdb) psql_admin -c "DROP DATABASE IF EXISTS \"${2:?dbname}\" WITH (FORCE)" ;;
  *) echo "usage: $0 install|start|stop|status|url DB|createdb DB|ensuredb DB|dropdb DB" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# A local high-availability cluster: etcd (the DCS) and three Patroni nodes of PostgreSQL 15 +
# PostGIS on loopback ports, synchronous replication (`synchronous_mode: true`).
#   scripts/ha.sh install            apt-get patroni, etcd-server, python3-etcd, PostgreSQL, PostGIS when missing
#   scripts/ha.sh up                 start etcd and the three nodes (init once), wait for a primary
#                                    and a synchronous standby, create and migrate the `wangge` database
#   scripts/ha.sh down               stop the nodes (fast shutdown) and etcd; the data stays
#   scripts/ha.sh destroy            down, then remove the data
#   scripts/ha.sh url [DB]           the multi-host DATABASE_URL (target_session_attrs=read-write)
#   scripts/ha.sh status             patronictl list
#   scripts/ha.sh primary            the name of the current primary (node1..node3)
#   scripts/ha.sh kill NODE          SIGKILL NODE's Patroni and its postmaster (a machine dying)
#   scripts/ha.sh start-node NODE    start NODE's Patroni again (it rejoins as a standby)
#   scripts/ha.sh maintenance on|off Patroni's maintenance mode (it stops managing the nodes: a
#                                    standby's paused replay stays paused, as the replica test needs)
# Ports: WANGGE_HA_PORT (55440) for etcd, +1 etcd peers, +2..+4 PostgreSQL, +12..+14 Patroni's API.
# Data: /var/tmp/wangge-ha-<checkout hash> (linked as .data/ha), never in git. As root, PostgreSQL,
# Patroni and etcd run as the unprivileged `postgres` user (initdb refuses root).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PGVER=${WANGGE_PG_VERSION:-15}
PGBIN=/usr/lib/postgresql/$PGVER/bin
BASE=${WANGGE_HA_PORT:-55440}
ETCD_PORT=$BASE
ETCD_PEER=$((BASE + 1))
NODES=(node1 node2 node3)
root=${WANGGE_HA_DIR:-/var/tmp/wangge-ha-$(echo "$here" | md5sum | cut -c1-12)}

pg_port() { echo $((BASE + 1 + ${1#node})); }
rest_port() { echo $((BASE + 11 + ${1#node})); }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  local need=()
  [ -x "$PGBIN/initdb" ] || need+=("postgresql-$PGVER")
  [ -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ] || need+=("postgresql-$PGVER-postgis-3")
  command -v psql >/dev/null || need+=("postgresql-client-$PGVER")
  command -v patroni >/dev/null || need+=(patroni)
  command -v etcd >/dev/null || need+=(etcd-server)
  /usr/bin/python3 -c 'import etcd' 2>/dev/null || need+=(python3-etcd)
  [ ${#need[@]} -eq 0 ] && return 0
  echo "ha: installing ${need[*]}" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # The packages' own services are not started (no init system here; ours run on other ports).
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $sudo apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
}

prepare() {
  mkdir -p "$root" "$here/.data"
  [ -L "$here/.data/ha" ] || ln -sfn "$root" "$here/.data/ha"
  for n in "${NODES[@]}"; do mkdir -p "$root/$n/run" "$root/$n/pg"; chmod 700 "$root/$n/pg"; done
  mkdir -p "$root/etcd"
  chmod 700 "$root/etcd"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$root"
  for n in "${NODES[@]}"; do
    sed -e "s|@NAME@|$n|g" -e "s|@NODE_DIR@|$root/$n|g" -e "s|@PGBIN@|$PGBIN|g" \
      -e "s|@PG_PORT@|$(pg_port "$n")|g" -e "s|@REST_PORT@|$(rest_port "$n")|g" \
      -e "s|@ETCD_PORT@|$ETCD_PORT|g" -e "s|@FSYNC@|${WANGGE_PG_FSYNC:-on}|g" \
      "$here/scripts/ha/patroni.yml.in" > "$root/$n/patroni.yml"
  done
  [ "$(id -u)" = 0 ] && chown -R postgres: "$root"
  return 0
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_etcd() {
  alive "$root/etcd.pid" && return 0
  rm -f "$root/etcd.pid"
  # (the pid file is written by the process itself: `runuser` forks, so $! would be runuser's)
  as_owner setsid sh -c 'echo $$ > "$0"; exec "$@"' "$root/etcd.pid" etcd --name ha --data-dir "$root/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "ha=http://127.0.0.1:$ETCD_PEER" --log-level warn \
    >> "$root/etcd/etcd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "ha: etcd did not start (see $root/etcd/etcd.log)" >&2
  return 1
}

start_node() {
  local n=$1
  alive "$root/$n/patroni.pid" && return 0
  rm -f "$root/$n/patroni.pid"
  as_owner setsid sh -c 'echo $$ > "$0"; exec "$@"' "$root/$n/patroni.pid" \
    patroni "$root/$n/patroni.yml" >> "$root/$n/patroni.out" 2>&1 < /dev/null &
  for _ in $(seq 1 50); do [ -s "$root/$n/patroni.pid" ] && return 0; sleep 0.1; done
}

role_of() { curl -fsS "http://127.0.0.1:$(rest_port "$1")/patroni" 2>/dev/null \
  | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("role",""), d.get("state",""))' 2>/dev/null || true; }

primary() {
  for n in "${NODES[@]}"; do
    # /primary answers 200 only on the node holding the leader key and running read-write
    if curl -fsS -o /dev/null "http://127.0.0.1:$(rest_port "$n")/primary" 2>/dev/null; then echo "$n"; return 0; fi
  done
  return 1
}

wait_cluster() {
  local deadline=$((SECONDS + ${1:-120}))
  while [ $SECONDS -lt $deadline ]; do
    local p sync=0 running=0
    if p=$(primary); then
      for n in "${NODES[@]}"; do
        [ "$n" = "$p" ] && continue
        curl -fsS -o /dev/null "http://127.0.0.1:$(rest_port "$n")/sync" 2>/dev/null && sync=$((sync + 1))
        curl -fsS -o /dev/null "http://127.0.0.1:$(rest_port "$n")/replica" 2>/dev/null && running=$((running + 1))
      done
      if [ $sync -ge 1 ] && [ $running -ge $((${#NODES[@]} - 1)) ]; then echo "$p"; return 0; fi
    fi
    sleep 0.5
  done
  echo "ha: the cluster did not come up (logs under $root/node*/)" >&2
  return 1
}

url() {
  local db=${1:-wangge} hosts=()
  for n in "${NODES[@]}"; do hosts+=("127.0.0.1:$(pg_port "$n")"); done
  local IFS=,
  echo "postgresql://wangge@${hosts[*]}/$db?target_session_attrs=read-write"
}

psql_primary() {
  local p
  p=$(primary)
  psql -h 127.0.0.1 -p "$(pg_port "$p")" -U wangge -d postgres -v ON_ERROR_STOP=1 -qAt "$@"
}

up() {
  install_packages
  prepare
  start_etcd
  for n in "${NODES[@]}"; do start_node "$n"; done
  local p
  p=$(wait_cluster 180)
  if [ -z "$(psql_primary -c "SELECT 1 FROM pg_database WHERE datname = 'wangge'")" ]; then
    psql_primary -c 'CREATE DATABASE wangge'
  fi
  if [ -x "$here/.venv/bin/python" ] && [ "${WANGGE_HA_MIGRATE:-1}" = 1 ]; then
    (cd "$here" && .venv/bin/python -c 'import sys; from app.migrate import upgrade; upgrade(sys.argv[1])' "$(url wangge)")
  fi
  echo "ha: primary $p; DATABASE_URL=$(url wangge)" >&2
}

stop_pidfile() {
  local f=$1 sig=${2:-TERM}
  if alive "$f"; then
    local pid
    pid=$(cat "$f")
    kill "-$sig" "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$f"
}

postmaster_pid() { head -1 "$root/$1/pg/postmaster.pid" 2>/dev/null || true; }

down() {
  for n in "${NODES[@]}"; do stop_pidfile "$root/$n/patroni.pid"; done
  # a postmaster left by a killed Patroni
  for n in "${NODES[@]}"; do
    if [ -f "$root/$n/pg/PG_VERSION" ] && as_owner "$PGBIN/pg_ctl" -D "$root/$n/pg" status >/dev/null 2>&1; then
      as_owner "$PGBIN/pg_ctl" -D "$root/$n/pg" -m fast -w stop >/dev/null || true
    fi
  done
  stop_pidfile "$root/etcd.pid"
  echo "ha: stopped" >&2
}

kill_node() {
  local n=$1 pm
  pm=$(postmaster_pid "$n")
  local pids=()
  alive "$root/$n/patroni.pid" && pids+=("$(cat "$root/$n/patroni.pid")")
  [ -n "$pm" ] && pids+=("$pm")
  [ ${#pids[@]} -gt 0 ] && kill -9 "${pids[@]}" 2>/dev/null || true
  rm -f "$root/$n/patroni.pid"
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  destroy) down; rm -rf "$root"; rm -f "$here/.data/ha" ;;
  url) url "${2:-wangge}" ;;
  status) patronictl -c "$root/node1/patroni.yml" list ;;
  maintenance)
    case "${2:?on|off}" in
      # idempotent: pausing a paused cluster (or resuming a managed one) is not an error
      on) patronictl -c "$root/node1/patroni.yml" pause --wait >&2 || patronictl -c "$root/node1/patroni.yml" list | grep -q "Maintenance mode: on" ;;
      off) patronictl -c "$root/node1/patroni.yml" resume --wait >&2 || ! patronictl -c "$root/node1/patroni.yml" list | grep -q "Maintenance mode: on" ;;
      *) echo "usage: $0 maintenance on|off" >&2; exit 2 ;;
    esac ;;
  primary) primary ;;
  wait) wait_cluster "${2:-120}" ;;
  role) role_of "${2:?node}" ;;
  kill) kill_node "${2:?node}" ;;
  start-node) start_node "${2:?node}" ;;
  pg-port) pg_port "${2:?node}" ;;
  dir) echo "$root" ;;
  *) echo "usage: $0 install|up|down|destroy|url [DB]|status|primary|wait [S]|kill NODE|start-node NODE" >&2; exit 2 ;;
esac

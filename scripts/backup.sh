#!/usr/bin/env bash
# Backups with pgBackRest (Debian `pgbackrest`): full and incremental backups and WAL archiving to
# a repository directory, and the photos (the directory media store) copied beside them.
#   scripts/backup.sh install                 apt-get pgbackrest when missing
#   scripts/backup.sh configure               write the pgBackRest config for the cluster below
#   scripts/backup.sh archive-command         the archive_command the cluster must run
#   scripts/backup.sh stanza-create           create the stanza (after the cluster archives)
#   scripts/backup.sh full | incr             a full / an incremental backup
#   scripts/backup.sh media                   copy new photos into the repository (content-addressed, append-only)
#   scripts/backup.sh info                    pgbackrest info
#   scripts/backup.sh restore DATA [TIME]     restore into the empty directory DATA, to TIME (a
#                                             timestamptz) or to the end of the archive; then
#                                             start a cluster on DATA: it replays and promotes
#   scripts/backup.sh restore-media DIR       copy the repository's photos into DIR
# The cluster: WANGGE_BACKUP_PGDATA, WANGGE_BACKUP_PGPORT (5432), WANGGE_BACKUP_PGSOCKET (/tmp).
# The repository: WANGGE_BACKUP_REPO (default /var/tmp/wangge-backup-<checkout hash>, linked as
# .data/backup); the photos: WANGGE_MEDIA_DIR (.data/media). pgBackRest runs as the cluster's
# owner (`postgres` when root), like PostgreSQL itself.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STANZA=wangge
REPO=${WANGGE_BACKUP_REPO:-/var/tmp/wangge-backup-$(echo "$here" | md5sum | cut -c1-12)}
CONF=$REPO/pgbackrest.conf
PGDATA_=${WANGGE_BACKUP_PGDATA:-$here/.data/pg}
PGPORT_=${WANGGE_BACKUP_PGPORT:-5432}
PGSOCK_=${WANGGE_BACKUP_PGSOCKET:-/tmp}
MEDIA=${WANGGE_MEDIA_DIR:-$here/.data/media}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  command -v pgbackrest >/dev/null && return 0
  echo "backup: installing pgbackrest" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends pgbackrest >/dev/null
}

configure() {
  install_packages
  mkdir -p "$REPO/repo" "$REPO/log" "$REPO/spool" "$REPO/media"
  [ -e "$here/.data/backup" ] || { mkdir -p "$here/.data"; ln -sfn "$REPO" "$here/.data/backup"; }
  cat > "$CONF" <<EOF
# written by scripts/backup.sh configure
[global]
repo1-path=$REPO/repo
# two full backups kept (and the incrementals and WAL they need)
repo1-retention-full=2
log-path=$REPO/log
spool-path=$REPO/spool
lock-path=$REPO/spool
log-level-console=warn
log-level-file=info
compress-type=lz4
start-fast=y
archive-async=n
process-max=2
# how long a backup waits for its last WAL segment to be archived (a backlog after a bulk load)
archive-timeout=${WANGGE_BACKUP_ARCHIVE_TIMEOUT:-60}

[$STANZA]
pg1-path=$PGDATA_
pg1-port=$PGPORT_
pg1-socket-path=$PGSOCK_
pg1-user=wangge
pg1-database=postgres
EOF
  [ "$(id -u)" = 0 ] && chown -R postgres: "$REPO"
  return 0
}

br() { as_owner pgbackrest --config="$CONF" --stanza=$STANZA "$@"; }

media() {
  # Photos are stored by content hash and never rewritten or deleted, so the repository's copy
  # only grows: a copy made after a point in time holds every photo the database had then.
  mkdir -p "$REPO/media"
  if [ -d "$MEDIA" ]; then
    cp -a -n "$MEDIA/." "$REPO/media/"
  fi
  date -u +%FT%T.%NZ > "$REPO/media/.synced_at"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$REPO/media"
  return 0
}

restore() {
  local data=${1:?data directory} target=${2:-}
  mkdir -p "$data"
  chmod 700 "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  local args=(--pg1-path="$data" --archive-mode=off)
  if [ -n "$target" ]; then
    args+=(--type=time "--target=$target" --target-action=promote)
  fi
  br "${args[@]}" restore
}

case "${1:-}" in
  install) install_packages ;;
  configure) configure ;;
  archive-command) echo "pgbackrest --config=$CONF --stanza=$STANZA archive-push %p" ;;
  stanza-create) br stanza-create && br check ;;
  full) br --type=full backup ;;
  incr) br --type=incr backup ;;
  diff) br --type=diff backup ;;
  media) media ;;
  info) br info ;;
  check) br check ;;
  restore) restore "${2:-}" "${3:-}" ;;
  restore-media) mkdir -p "${2:?dir}"; cp -a "$REPO/media/." "$2/" ;;
  *) echo "usage: $0 install|configure|archive-command|stanza-create|full|incr|media|info|restore DATA [TIME]|restore-media DIR" >&2; exit 2 ;;
esac

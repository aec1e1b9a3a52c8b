# shellcheck shell=bash
# pgBackRest for the PostgreSQL that deploy-ha.sh --platform local runs: continuous WAL archiving,
# full and incremental backups with retention, point-in-time restore, and a periodic schedule.
# Sourced by deploy-ha.sh (it uses its log/warn/die/need/as_pg_owner/stop_pid helpers and state).
# See docs/deployment/DEPLOYMENT_RECOVERY_GUIDE.md.

BACKUP_STANZA=jackcwf

backup_dir() { printf '%s' "$HA_DIR/pgbackrest"; }
backup_conf() { printf '%s' "$HA_DIR/pgbackrest/pgbackrest.conf"; }
backup_enabled() { [[ -f "$(backup_conf)" ]]; }

# pgbr ARGS: pgBackRest as the owner of the data folder, with this deployment's configuration.
pgbr() {
  log "+ pgbackrest --stanza=$BACKUP_STANZA $*"
  as_pg_owner pgbackrest --config="$(backup_conf)" --stanza="$BACKUP_STANZA" "$@"
}

# backup_configure DATA PORT: repository and configuration, and the archiving settings PostgreSQL
# reads through an include (restored together with the data, so a restored cluster archives too).
backup_configure() {
  local data=$1 port=$2 dir
  dir=$(backup_dir)
  if ! command -v pgbackrest >/dev/null 2>&1; then
    warn "pgbackrest is not installed: no WAL archiving and no backups. Fix: apt-get install pgbackrest, then deploy again"
    return 0
  fi
  install -d -m 0750 "$dir" "$dir/repo" "$dir/log" "$dir/lock" "$dir/spool"
  if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$dir"; fi
  cat >"$(backup_conf)" <<CONF
# Written by deploy-ha.sh (local platform). Reference: https://pgbackrest.org/configuration.html
[global]
repo1-path=$dir/repo
# Full backups kept; older ones expire with the WAL only they needed (incrementals go with their full).
repo1-retention-full=${HA_BACKUP_RETENTION_FULL:-2}
log-path=$dir/log
lock-path=$dir/lock
spool-path=$dir/spool
# Checkpoint at once instead of waiting for the next one.
start-fast=y
compress-type=lz4
log-level-console=warn

[$BACKUP_STANZA]
pg1-path=$data
pg1-port=$port
pg1-socket-path=/tmp
pg1-user=postgres
CONF
  if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$(backup_conf)"; fi
  # archive_timeout bounds the RPO when writes are rare: a partly filled WAL segment is archived
  # after this many seconds at the latest.
  as_pg_owner tee "$data/jackcwf-archive.conf" >/dev/null <<CONF
# Written by deploy-ha.sh: continuous WAL archiving to pgBackRest.
archive_mode = on
archive_command = 'pgbackrest --config=$(backup_conf) --stanza=$BACKUP_STANZA archive-push %p'
archive_timeout = ${HA_ARCHIVE_TIMEOUT:-60}
wal_level = replica
CONF
  if ! grep -q "jackcwf-archive.conf" "$data/postgresql.conf"; then
    printf "include_if_exists = 'jackcwf-archive.conf'\n" | as_pg_owner tee -a "$data/postgresql.conf" >/dev/null
  fi
}

# backup_stanza: creates the stanza once PostgreSQL runs (harmless when it exists) and checks archiving.
backup_stanza() {
  backup_enabled || return 0
  pgbr stanza-create >>"$(backup_dir)/log/deploy.log" 2>&1 \
    || die "pgbackrest stanza-create failed" "read $(backup_dir)/log/ and $(backup_dir)/log/deploy.log"
  pgbr check >>"$(backup_dir)/log/deploy.log" 2>&1 \
    || die "pgbackrest check failed: WAL archiving does not work" "read $(backup_dir)/log/ and $HA_DIR/postgres/postgres.log"
  log "pgBackRest: stanza $BACKUP_STANZA ready, WAL archived continuously to $(backup_dir)/repo"
}

backup_require() {
  local_load_state
  [[ "$OWN_POSTGRES" == true ]] || die "this deployment uses an external DATABASE_URL" \
    "back that database up where it runs (pgBackRest on its host, or the CloudNativePG backups)"
  backup_enabled || die "no pgBackRest configuration in $(backup_dir)" "apt-get install pgbackrest, then deploy again (--down, then deploy)"
}

# local_backup [TYPE]: full, diff or incr (default incr; pgBackRest takes a full one when none exists).
local_backup() {
  backup_require
  local type=${1:-${HA_BACKUP_TYPE:-incr}} started=$SECONDS
  [[ "$type" =~ ^(full|diff|incr)$ ]] || die "unknown backup type '$type'" "HA_BACKUP_TYPE=full|diff|incr"
  log "backup: taking a $type backup (online; the platform keeps serving)"
  pgbr --type="$type" --log-level-console=info backup || die "pgbackrest backup failed" "read $(backup_dir)/log/"
  log "backup: done in $((SECONDS - started))s"
  pgbr info
}

local_backups() {
  backup_require
  pgbr info
}

# local_verify: pgBackRest re-reads every backup and archived WAL file and checks its checksum.
local_verify() {
  backup_require
  pgbr --log-level-console=info verify || die "pgbackrest verify found a problem" "read $(backup_dir)/log/"
  log "verify: every backup and WAL file in the repository is intact"
}

# local_restore [TIME]: stop the replicas, restore PostgreSQL (latest, or to TIME), start them again.
local_restore() {
  local target=${1:-} started=$SECONDS pgbin data i args=(--delta --log-level-console=info)
  backup_require
  pgbin=$(postgres_bin)
  data="$HA_DIR/postgres/data"
  if [[ -n "$target" ]]; then
    args+=(--type=time "--target=$target" --target-action=promote)
    log "restore: to $target"
  else
    log "restore: to the latest archived transaction"
  fi
  for f in "$HA_DIR"/replica-*.pid; do
    [[ -e "$f" ]] || continue
    i=${f##*/replica-}; i=${i%.pid}
    stop_pid "$f" "replica $i" "$STOP_TIMEOUT" &
  done
  wait
  if as_pg_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    # Archives the WAL written so far (check switches to a new segment and waits for it).
    pgbr check || warn "could not archive the last WAL segment: the newest transactions may not be restorable"
    log "restore: stopping PostgreSQL"
    as_pg_owner "$pgbin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
  fi
  pgbr "${args[@]}" restore || die "pgbackrest restore failed; PostgreSQL and the replicas are stopped" \
    "read $(backup_dir)/log/, fix, and run --restore again (deploy-ha.sh --platform local --backups lists what can be restored; a --to must be at least a second after a backup's stop time)"
  log "restore: files restored in $((SECONDS - started))s; starting PostgreSQL (it replays archived WAL)"
  as_pg_owner "$pgbin/pg_ctl" -D "$data" -l "$HA_DIR/postgres/postgres.log" -w -t 600 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null \
    || die "PostgreSQL did not start after the restore" "read $HA_DIR/postgres/postgres.log"
  local deadline=$((SECONDS + 600))
  until [[ "$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc 'SELECT pg_is_in_recovery()' 2>/dev/null)" == "f" ]]; do
    if ! as_pg_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      tail -n 20 "$HA_DIR/postgres/postgres.log" >&2 || true
      die "PostgreSQL stopped during recovery (last log lines above)" \
        "a target before the end of the chosen backup or after the newest archived WAL cannot be reached; pick another --to (see --backups)"
    fi
    (( SECONDS < deadline )) || die "PostgreSQL is still recovering after 600s" "read $HA_DIR/postgres/postgres.log"
    sleep 0.5
  done
  log "restore: PostgreSQL recovered and accepts writes"
  for ((i = 1; i <= REPLICAS; i++)); do local_start_replica "$i"; done
  for ((i = 1; i <= REPLICAS; i++)); do
    wait_for_url "$(replica_url "$i")/health/ready" "replica $i" "$HA_DIR/replica-$i.pid" "$HA_DIR/replica-$i.log"
    if pid_alive "$(read_pid "$HA_DIR/lb.pid")"; then wait_lb_sees_healthy "$(replica_url "$i")"; fi
  done
  log "restore: complete in $((SECONDS - started))s (RTO); replicas serving again"
  log "restore: take a full backup of the new timeline soon: deploy-ha.sh --platform local --backup (HA_BACKUP_TYPE=full)"
}

# The periodic schedule: a background loop started by the deployment, stopped by --down.
backup_schedule_start() {
  backup_enabled || return 0
  local interval=${HA_BACKUP_INTERVAL:-3600}
  [[ "$interval" =~ ^[1-9][0-9]*$ ]] || die "HA_BACKUP_INTERVAL must be a whole number of seconds (got '$interval')" "HA_BACKUP_INTERVAL=3600"
  (
    exec env HA_DIR="$HA_DIR" nohup "$SCRIPT_DIR/deploy-ha.sh" --platform local --backup-schedule >>"$(backup_dir)/log/schedule.log" 2>&1 </dev/null
  ) &
  echo $! >"$(backup_dir)/schedule.pid"
  log "backups: every ${interval}s (incremental; full every ${HA_BACKUP_FULL_EVERY:-24}th), log $(backup_dir)/log/schedule.log"
}

backup_schedule_stop() {
  if [[ -f "$(backup_dir)/schedule.pid" ]]; then stop_pid "$(backup_dir)/schedule.pid" "backup schedule" 10; fi
}

# backup_schedule_loop: runs in the background; a failed backup is logged and retried next time.
backup_schedule_loop() {
  local interval=${HA_BACKUP_INTERVAL:-3600} every=${HA_BACKUP_FULL_EVERY:-24} n=0 type sleeper=""
  trap '[[ -n "$sleeper" ]] && kill "$sleeper" 2>/dev/null; exit 0' TERM INT
  while true; do
    sleep "$interval" & sleeper=$!
    wait "$sleeper"
    n=$((n + 1)); type=incr
    if (( n % every == 0 )); then type=full; fi
    ( local_backup "$type" ) || warn "scheduled $type backup failed; next attempt in ${interval}s"
  done
}

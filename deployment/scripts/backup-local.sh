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

# backup_write_conf STANZA_LINES: the repository and pgBackRest's configuration, with the stanza's
# PostgreSQL options given.
backup_write_conf() {
  local dir tmp
  dir=$(backup_dir)
  install -d -m 0750 "$dir" "$dir/repo" "$dir/log" "$dir/lock" "$dir/spool"
  if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$dir"; fi
  tmp="$(backup_conf).new"
  cat >"$tmp" <<CONF
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
$1
CONF
  if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$tmp"; fi
  # Renamed into place: a scheduled backup may be reading the configuration right now.
  mv -f "$tmp" "$(backup_conf)"
}

# backup_configure DATA PORT: the single PostgreSQL's stanza, and the archiving settings it reads
# through an include (restored together with the data, so a restored cluster archives too).
backup_configure() {
  local data=$1 port=$2
  if ! command -v pgbackrest >/dev/null 2>&1; then
    warn "pgbackrest is not installed: no WAL archiving and no backups. Fix: apt-get install pgbackrest, then deploy again"
    return 0
  fi
  backup_write_conf "pg1-path=$data
pg1-port=$port
pg1-socket-path=/tmp
pg1-user=postgres"
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

# backup_configure_ha: the stanza of the Patroni cluster (--ha-data). Its members are pg1..pg3 of
# the stanza, all on this host: pgBackRest asks each whether it is the primary and backs up (and
# checks archiving on) whichever is, so backups follow a switchover or failover by themselves.
# Archiving comes from the Patroni configuration (data_render_member): archive_mode on and
# backup_member_command ... archive-push on every member, so only the primary archives.
backup_configure_ha() {
  if [[ -n "${HA_PG_ARCHIVE_COMMAND:-}" ]]; then
    log "pgBackRest: not configured (HA_PG_ARCHIVE_COMMAND archives WAL elsewhere)"
    return 0
  fi
  if ! command -v pgbackrest >/dev/null 2>&1; then
    warn "pgbackrest is not installed: no WAL archiving and no backups. Fix: apt-get install pgbackrest, then deploy again"
    return 0
  fi
  local i lines=""
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    lines+="pg$i-path=$HA_DIR/patroni/pg$i/data
pg$i-port=$(data_port "$HA_PG_PORTS" "$i")
pg$i-socket-path=$HA_DIR/patroni/pg$i
pg$i-user=postgres
"
  done
  backup_write_conf "$lines"
}

# backup_member_command DATA ARGS...: a pgBackRest command line for the member whose data folder
# is DATA (pg1-path is where archive-push finds the WAL PostgreSQL names and where restore writes).
backup_member_command() {
  local data=$1
  shift
  printf 'pgbackrest --config=%s --stanza=%s --pg1-path=%s %s' "$(backup_conf)" "$BACKUP_STANZA" "$data" "$*"
}

# backup_stanza: creates the stanza once PostgreSQL runs (harmless when it exists) and checks archiving.
backup_stanza() {
  backup_enabled || return 0
  pgbr stanza-create >>"$(backup_dir)/log/deploy.log" 2>&1 \
    || die "pgbackrest stanza-create failed" "read $(backup_dir)/log/ and $(backup_dir)/log/deploy.log"
  pgbr check >>"$(backup_dir)/log/deploy.log" 2>&1 \
    || die "pgbackrest check failed: WAL archiving does not work" "read $(backup_dir)/log/ and the PostgreSQL log ($HA_DIR/postgres/postgres.log, or $HA_DIR/patroni*.log with --ha-data)"
  log "pgBackRest: stanza $BACKUP_STANZA ready, WAL archived continuously to $(backup_dir)/repo"
}

backup_require() {
  local_load_state
  if [[ "$HA_DATA" == true ]]; then
    backup_enabled || die "no pgBackRest configuration in $(backup_dir)" "apt-get install pgbackrest (and leave HA_PG_ARCHIVE_COMMAND unset), then deploy again (--down, then --ha-data)"
    return 0
  fi
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

# local_verify: archiving works, and pgBackRest re-reads every backup and archived WAL file and checks its checksum.
local_verify() {
  backup_require
  # Archiving works now: check makes the primary (whichever member it is) switch to a new WAL
  # segment and waits until that segment is in the repository.
  pgbr check || die "pgbackrest check failed: the primary's WAL does not reach the repository" \
    "read $(backup_dir)/log/ and the PostgreSQL log ($HA_DIR/postgres/postgres.log, or $HA_DIR/patroni*.log with --ha-data)"
  log "verify: WAL archiving works (pgbackrest check)"
  pgbr --log-level-console=info verify || die "pgbackrest verify found a problem" "read $(backup_dir)/log/"
  log "verify: every backup and WAL file in the repository is intact"
}

# backup_check_target TIME: before anything is stopped, TIME must parse and a backup must have
# ended in an earlier second (pgBackRest keeps stop times in whole seconds and restores to a time
# from a backup that stopped strictly before it).
backup_check_target() {
  local target=$1 epoch earliest
  need jq "apt-get install jq"
  [[ "$target" =~ ^[0-9A-Za-z\ :.+/_-]+$ ]] || die "--to '$target' has characters a time never has" '--to "2026-12-04 10:15:00+00"'
  epoch=$(date -u -d "$target" +%s 2>/dev/null) || die "--to '$target' is not a time" '--to "2026-12-04 10:15:00+00" (UTC with an offset)'
  earliest=$(as_pg_owner pgbackrest --config="$(backup_conf)" --stanza="$BACKUP_STANZA" --output=json info | jq -r '[.[0].backup[]?.timestamp.stop] | min // empty') \
    || die "pgbackrest info failed" "read $(backup_dir)/log/"
  [[ -n "$earliest" ]] || die "the repository holds no backup to restore from" "take one first: deploy-ha.sh --platform local --backup"
  (( earliest < epoch )) || die "no backup ended before $target (the oldest ended at $(date -u -d "@$earliest" '+%F %T+00'))" \
    "pick a --to at least a second after a backup's end (deploy-ha.sh --platform local --backups lists them)"
}

# backup_start_replicas: the service replicas start on the restored database and rejoin the balancer.
backup_start_replicas() {
  local i
  for ((i = 1; i <= REPLICAS; i++)); do local_start_replica "$i"; done
  for ((i = 1; i <= REPLICAS; i++)); do
    wait_for_url "$(replica_url "$i")/health/ready" "replica $i" "$HA_DIR/replica-$i.pid" "$HA_DIR/replica-$i.log"
    if pid_alive "$(read_pid "$HA_DIR/lb.pid")"; then wait_lb_sees_healthy "$(replica_url "$i")"; fi
  done
}

# local_restore [TIME]: stop the replicas, restore PostgreSQL (latest, or to TIME), start them again.
local_restore() {
  local target=${1:-} started=$SECONDS pgbin data args=(--delta --log-level-console=info)
  backup_require
  if [[ -n "$target" ]]; then backup_check_target "$target"; fi
  if [[ "$HA_DATA" == true ]]; then
    backup_restore_ha "$target"
    return
  fi
  pgbin=$(postgres_bin)
  data="$HA_DIR/postgres/data"
  if [[ -n "$target" ]]; then
    args+=(--type=time "--target=$target" --target-action=promote)
    log "restore: to $target"
  else
    log "restore: to the latest archived transaction"
  fi
  local_stop_replicas
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
  backup_start_replicas
  log "restore: complete in $((SECONDS - started))s (RTO); replicas serving again"
  log "restore: take a full backup of the new timeline soon: deploy-ha.sh --platform local --backup (HA_BACKUP_TYPE=full)"
}

# backup_files_seconds: how long the last pgbackrest restore took (its own log), in seconds.
backup_files_seconds() {
  local ms
  ms=$(grep -o 'restore command end: completed successfully ([0-9]*ms)' "$(backup_dir)/log/$BACKUP_STANZA-restore.log" 2>/dev/null | tail -n 1 | grep -o '[0-9]*')
  if [[ -n "$ms" ]]; then printf '%s' $(((ms + 500) / 1000)); else printf '?'; fi
}

# backup_restore_ha [TIME]: the Patroni cluster's restore, the way Patroni documents it: stop
# Patroni on every member, remove the cluster from etcd (patronictl remove), bootstrap a new
# cluster on one member with the custom bootstrap method "pgbackrest" (pgbackrest restore, then
# PostgreSQL replays archived WAL up to TIME and promotes), and let the other members clone it.
backup_restore_ha() {
  local target=$1 started=$SECONDS leader i first=1 others=() step
  local_data_protection_key
  local restore_args="--log-level-console=info"
  if [[ -n "$target" ]]; then
    restore_args+=" --type=time \"--target=$target\" --target-action=promote"
    log "restore: the Patroni cluster to $target"
  else
    log "restore: the Patroni cluster to the latest archived transaction"
  fi
  for ((i = 2; i <= DATA_MEMBERS; i++)); do others+=("$i"); done
  local_stop_replicas
  leader=$(data_leader || true)
  if [[ -n "$leader" ]]; then
    # Archives the WAL written so far (check switches to a new segment and waits for it).
    pgbr check || warn "could not archive the last WAL segment: the newest transactions may not be restorable"
  fi
  log "restore: stopping Patroni on every member (the standbys first, then the leader ${leader:-(none)}, so none takes over)"
  data_stop_postgres "$leader"
  log "restore: removing the cluster $(data_scope) from etcd (patronictl remove)"
  printf '%s\nYes I am aware\n' "$(data_scope)" | runuser_if_root patronictl -c "$(data_patroni_config 1)" remove "$(data_scope)" \
    >>"$(backup_dir)/log/restore.log" 2>&1 \
    || die "patronictl remove failed; Patroni is stopped on every member" "read $(backup_dir)/log/restore.log; etcd must be healthy (health-check.sh --platform local), then run --restore again"
  # Patroni bootstraps and clones only into empty data folders; the old ones stay until the
  # cluster is whole again, so a failed restore loses nothing that was there.
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    local data="$HA_DIR/patroni/pg$i/data"
    rm -rf "$data.failed"   # where Patroni moves the data of a failed bootstrap
    if [[ -e "$data.before-restore" ]]; then
      rm -rf "$data"   # what a failed restore left; the data from before it stays
    elif [[ -e "$data" ]]; then
      mv "$data" "$data.before-restore"
    fi
    install -d -m 0700 "$data"
    if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$data"; fi
  done
  step=$SECONDS
  log "restore: pg$first bootstraps a new cluster from the repository (Patroni bootstrap method pgbackrest: pgbackrest restore, then PostgreSQL replays archived WAL and promotes)"
  DATA_BOOTSTRAP_METHOD=pgbackrest DATA_RESTORE_ARGS=$restore_args START_TIMEOUT=${HA_RESTORE_TIMEOUT:-1800} \
    DATA_START_FIX="a --to after the newest archived WAL cannot be reached (--backups shows the range): run --restore again with another --to; the data before the restore is in $HA_DIR/patroni/pgN/data.before-restore" \
    data_start_patroni "$first"
  [[ "$(data_leader)" == "pg$first" ]] || die "pg$first did not become the leader after the restore" "patronictl -c $(data_patroni_config 1) list; read $HA_DIR/patroni$first.log"
  # Read only when a cluster is bootstrapped: back to initdb, so nothing restores again by surprise.
  data_render_member "$first" "$(data_patroni_config "$first")"
  log "restore: pg$first restored, recovered and the leader in $((SECONDS - step))s (files restored in $(backup_files_seconds)s)"
  # The new timeline's history file reaches the repository before anyone follows it.
  pgbr check || die "pgbackrest check failed on the restored leader: WAL archiving does not work" "read $(backup_dir)/log/ and $HA_DIR/patroni$first.log"
  step=$SECONDS
  # The standbys clone the restored leader with pg_basebackup: the repository's newest backup may
  # lie on the abandoned timeline, after the point restored to.
  log "restore: the other members clone the new leader (pg_basebackup) and stream from it"
  DATA_REPLICA_METHODS=basebackup data_start_patroni "$first" "${others[@]}"
  for i in "${others[@]}"; do data_render_member "$i" "$(data_patroni_config "$i")"; done
  log "restore: $(data_members_running) members running, leader $(data_leader) ($((SECONDS - step))s)"
  backup_start_replicas
  for ((i = 1; i <= DATA_MEMBERS; i++)); do rm -rf "$HA_DIR/patroni/pg$i/data.before-restore"; done
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

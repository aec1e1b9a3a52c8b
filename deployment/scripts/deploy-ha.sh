#!/usr/bin/env bash
# Deploys Jackcwf with several replicas behind a load balancer, restarts them one at a time without
# downtime, and stops them again. See docs/deployment/local-ha.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
  cat <<'EOF'
Usage: deploy-ha.sh --platform local|docker-compose|kubernetes [--replicas N] [action] [options]

Actions (default: deploy, or scale an existing deployment to N replicas):
  --rolling-restart   Restart every replica, one at a time, with no failed request:
                        local           SIGTERM (readiness turns 503, the replica drains), wait
                                        for exit, start again, wait until ready and back in the
                                        load balancer, then the next replica.
                        docker-compose  scale web up by one, wait until the new container is
                                        healthy, stop one old container gracefully, repeat.
                        kubernetes      kubectl rollout restart + rollout status.
  --down              Stop everything (local: load balancer, replicas, Redis, PostgreSQL, by PID).
  --switchover        local with --ha-data: planned PostgreSQL switchover (patronictl switchover):
                      the synchronous standby becomes the primary, requests wait and none fails.
  --status            Report the health of every replica and of the load balancer.
  --backup            local: take a pgBackRest backup now (incremental; full when none exists,
                        or HA_BACKUP_TYPE=full|diff). The platform keeps serving. With --ha-data
                        pgBackRest backs up whichever member is the primary.
  --backups           local: list the backups and the archived WAL range (pgbackrest info).
  --restore [--to T]  local: stop the replicas, restore PostgreSQL from pgBackRest (the latest
                        archived transaction, or the moment T, e.g. "2026-12-04 10:15:00+00"),
                        start PostgreSQL and the replicas again. With --ha-data: stop Patroni on
                        every member, patronictl remove, bootstrap pg1 from the repository
                        (Patroni bootstrap method pgbackrest), the other members clone it.
  --verify-backups    local: re-read every backup and WAL file and check them (pgbackrest verify).

Options:
  --platform P        local | docker-compose | kubernetes (required).
  --replicas N        Number of replicas (default 3).
  --ha-data           local: a highly available data tier instead of one PostgreSQL and one Redis
                      (run again on a running deployment: starts the data-tier members that are down):
                      a three-member etcd, three PostgreSQL 15 servers managed by Patroni
                      (synchronous replication, automatic failover), Redis master + 2 replicas
                      + 3 sentinels; the replicas get multi-host DATABASE_URL and a Sentinel REDIS_URL.
  --sticky            local: turn on the load balancer's sticky cookie (an optimisation only).
  --purge             local, with --down: also delete the state folder (PostgreSQL data, logs).
  --overlay NAME      kubernetes: overlay of deployment/kubernetes/overlays (default medium).
  --all-in-one        kubernetes: apply deployment/kubernetes/all-in-one.yml instead of an overlay.
  --namespace NS      kubernetes: namespace (default jackcwf).
  -h, --help          This help.

Environment (local platform):
  HA_BACKUP_INTERVAL  Seconds between scheduled backups while the platform runs (default 3600).
  HA_BACKUP_FULL_EVERY  Every Nth scheduled backup is a full one, the others incremental (default 24).
  HA_BACKUP_RETENTION_FULL  Full backups kept, with their incrementals and WAL (default 2).
  HA_ARCHIVE_TIMEOUT  PostgreSQL archive_timeout: WAL reaches the backup repository within this
                      many seconds even when writes are rare (default 60; the RPO bound).
  HA_DIR              State folder: PIDs, logs, PostgreSQL data (default <repo>/.ha-local).
  HA_LB_PORT          Load balancer port (default 8080).
  HA_BASE_PORT        First replica port; replica i listens on HA_BASE_PORT+i-1 (default 8081).
  HA_PG_PORT          Port of the PostgreSQL started here (default 25433).
  HA_REDIS_PORT       Port of the Redis started here (default 26380).
  HA_BIND             Address everything listens on (default 127.0.0.1).
  HA_START_TIMEOUT    Seconds to wait for a process to become ready (default 90).
  HA_STOP_TIMEOUT     Seconds a replica gets to drain and exit before SIGKILL (default 60).
  HA_PG_PORTS, HA_PATRONI_PORTS, HA_ETCD_PORTS, HA_ETCD_PEER_PORTS, HA_REDIS_PORTS, HA_SENTINEL_PORTS
                      --ha-data: three ports each (defaults 25433,25434,25435 / 28008,28009,28010 /
                      22379,22381,22383 / 22380,22382,22384 / 26380,26381,26382 / 26390,26391,26392).
  HA_PG_ARCHIVE_MODE, HA_PG_ARCHIVE_COMMAND, HA_PG_RESTORE_COMMAND
                      --ha-data: WAL archiving settings of every PostgreSQL member (default:
                      pgBackRest archive-push / archive-get when installed, else off); a
                      HA_PG_ARCHIVE_COMMAND of your own turns the pgBackRest backups off.
  HA_RESTORE_TIMEOUT  --ha-data: seconds --restore waits for the restored member to replay WAL
                      and lead (default 1800).
  DATABASE_URL        Use this PostgreSQL instead of starting one.
  REDIS_URL           Use this Redis instead of starting one (started only if redis-server exists).
  JACKCWF_API_DLL     Service binary (default: src/Jackcwf.Api, built in Release when missing).
  JACKCWF_LB_DLL      Load balancer binary (default: src/Jackcwf.LoadBalancer, built likewise).
  Every service variable (SHUTDOWN_DRAIN_DELAY_SECONDS, DEMO_CHUNK_DELAY_MS, ...) is passed on
  to the replicas; SHUTDOWN_DRAIN_DELAY_SECONDS defaults to 8 here (the balancer needs up to
  ~5 s to notice a draining replica).

Environment (docker-compose / kubernetes):
  HA_COMPOSE_FILE     Compose file (default deployment/docker-compose.ha.yml).
  HA_ENV_FILE         The .env the compose file reads (default <repo>/.env); checked before deploying.
  HA_SECRETS_DIR      Folder of the Docker secrets (default <repo>/secrets); checked likewise.
  JACKCWF_IMAGE       docker-compose: a released image (e.g. ghcr.io/<owner>/jackcwf:1.2.3), pulled
                      and never rebuilt; unset builds jackcwf-backend:latest from this checkout.
  HA_STOP_GRACE       Seconds docker stop waits before SIGKILL (default 50, as stop_grace_period).
  HA_ROLLOUT_TIMEOUT  Seconds to wait for a rollout or a healthy container (default 300).

Examples:
  deploy-ha.sh --platform local --replicas 3
  deploy-ha.sh --platform local --replicas 3 --ha-data
  deploy-ha.sh --platform local --switchover
  deploy-ha.sh --platform local --rolling-restart
  deploy-ha.sh --platform local --down
  deploy-ha.sh --platform local --backup
  deploy-ha.sh --platform local --restore --to "2026-12-04 10:15:00+00"
  deploy-ha.sh --platform docker-compose --replicas 3 --rolling-restart
  deploy-ha.sh --platform kubernetes --overlay small --rolling-restart
EOF
}

log() { printf '%s [deploy-ha] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
warn() { printf '%s [deploy-ha] WARNING: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
# die MESSAGE FIX: what went wrong, then how to fix it.
die() {
  printf '%s [deploy-ha] ERROR: %s\n' "$(date -u +%H:%M:%S)" "$1" >&2
  if [[ $# -gt 1 ]]; then printf '  fix: %s\n' "$2" >&2; fi
  exit 1
}

PLATFORM=""
REPLICAS=""
ACTION="deploy"
STICKY=false
PURGE=false
HA_DATA=false
OVERLAY="medium"
ALL_IN_ONE=false
NAMESPACE="jackcwf"
RESTORE_TO=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --platform) PLATFORM=${2:-}; shift 2 || die "--platform needs a value" "--platform local|docker-compose|kubernetes" ;;
    --platform=*) PLATFORM=${1#*=}; shift ;;
    --replicas) REPLICAS=${2:-}; shift 2 || die "--replicas needs a number" "--replicas 3" ;;
    --replicas=*) REPLICAS=${1#*=}; shift ;;
    --rolling-restart) ACTION="rolling-restart"; shift ;;
    --down) ACTION="down"; shift ;;
    --switchover) ACTION="switchover"; shift ;;
    --ha-data) HA_DATA=true; shift ;;
    --status) ACTION="status"; shift ;;
    --backup) ACTION="backup"; shift ;;
    --backups) ACTION="backups"; shift ;;
    --restore) ACTION="restore"; shift ;;
    --verify-backups) ACTION="verify-backups"; shift ;;
    --backup-schedule) ACTION="backup-schedule"; shift ;;
    --to) RESTORE_TO=${2:-}; shift 2 || die "--to needs a time" '--to "2026-12-04 10:15:00+00"' ;;
    --to=*) RESTORE_TO=${1#*=}; shift ;;
    --sticky) STICKY=true; shift ;;
    --purge) PURGE=true; shift ;;
    --overlay) OVERLAY=${2:-}; shift 2 || die "--overlay needs a name" "--overlay small|medium|large" ;;
    --overlay=*) OVERLAY=${1#*=}; shift ;;
    --all-in-one) ALL_IN_ONE=true; shift ;;
    --namespace) NAMESPACE=${2:-}; shift 2 || die "--namespace needs a name" "--namespace jackcwf" ;;
    --namespace=*) NAMESPACE=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1" "run deploy-ha.sh --help" ;;
  esac
done

case "$PLATFORM" in
  local|docker-compose|kubernetes) ;;
  "") die "--platform is required" "deploy-ha.sh --platform local --replicas 3 (see --help)" ;;
  *) die "unknown platform '$PLATFORM'" "use --platform local, docker-compose or kubernetes" ;;
esac
if [[ -n "$RESTORE_TO" && "$ACTION" != restore ]]; then
  die "--to only goes with --restore" 'deploy-ha.sh --platform local --restore --to "2026-12-04 10:15:00+00"'
fi
if [[ -n "$REPLICAS" ]] && ! [[ "$REPLICAS" =~ ^[1-9][0-9]?$ ]]; then
  die "--replicas must be a number from 1 to 99 (got '$REPLICAS')" "--replicas 3"
fi

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed" "$2"; }

# shellcheck source=local-data-tier.sh disable=SC1091
source "$SCRIPT_DIR/local-data-tier.sh"

# ---------------------------------------------------------------------------------------------
# local: PostgreSQL, Redis, N replicas and the YARP load balancer as processes on this host
# ---------------------------------------------------------------------------------------------

HA_DIR=${HA_DIR:-$REPO_ROOT/.ha-local}
# Absolute, because the processes started here run in other working directories.
if [[ "$HA_DIR" != /* ]]; then HA_DIR="$PWD/$HA_DIR"; fi
STATE_FILE="$HA_DIR/state.env"
START_TIMEOUT=${HA_START_TIMEOUT:-90}
STOP_TIMEOUT=${HA_STOP_TIMEOUT:-60}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { if [[ -f "$1" ]]; then cat "$1"; fi; }

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

# wait_for_url URL WHAT PIDFILE LOGFILE: until URL answers 200; fails early if the process died.
wait_for_url() {
  local url=$1 what=$2 pidfile=$3 logfile=$4 deadline=$((SECONDS + START_TIMEOUT))
  until [[ "$(http_code "$url")" == "200" ]]; do
    if ! pid_alive "$(read_pid "$pidfile")"; then
      tail -n 20 "$logfile" >&2 || true
      die "$what exited during start-up (last log lines above)" "read $logfile"
    fi
    if (( SECONDS > deadline )); then
      tail -n 20 "$logfile" >&2 || true
      die "$what did not answer 200 on $url within ${START_TIMEOUT}s" "read $logfile, or raise HA_START_TIMEOUT"
    fi
    sleep 0.5
  done
}

# stop_pid PIDFILE WHAT TIMEOUT: SIGTERM, wait for the exit, SIGKILL after TIMEOUT seconds.
stop_pid() {
  local pidfile=$1 what=$2 timeout=$3 pid deadline
  pid=$(read_pid "$pidfile")
  if ! pid_alive "$pid"; then
    rm -f "$pidfile"
    return 0
  fi
  log "stopping $what (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if (( SECONDS > deadline )); then
      warn "$what (pid $pid) still running after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

postgres_bin() {
  local bins=(/usr/lib/postgresql/*/bin)
  [[ -x "${bins[-1]}/pg_ctl" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql" \
    "apt-get install postgresql, or set DATABASE_URL to an existing database"
  printf '%s' "${bins[-1]}"
}

# initdb refuses to run as root, so root runs the cluster as the postgres user.
as_pg_owner() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

local_write_state() {
  cat >"$STATE_FILE" <<EOF
# Written by deploy-ha.sh; read by --status, --rolling-restart, --down and health-check.sh.
HA_REPLICAS=$REPLICAS
HA_BIND=$BIND
HA_LB_PORT=$LB_PORT
HA_BASE_PORT=$BASE_PORT
HA_PG_PORT=$PG_PORT
HA_REDIS_PORT=$REDIS_PORT
HA_DATABASE_URL='$DB_URL'
HA_REDIS_URL='$RDS_URL'
HA_OWN_POSTGRES=$OWN_POSTGRES
HA_OWN_REDIS=$OWN_REDIS
HA_API_DLL='$API_DLL'
HA_LB_DLL='$LB_DLL'
HA_STICKY=$STICKY
HA_DRAIN_DELAY=$DRAIN_DELAY
HA_DATA=$HA_DATA
HA_PG_PORTS=${HA_PG_PORTS:-}
HA_PATRONI_PORTS=${HA_PATRONI_PORTS:-}
HA_ETCD_PORTS=${HA_ETCD_PORTS:-}
HA_ETCD_PEER_PORTS=${HA_ETCD_PEER_PORTS:-}
HA_REDIS_PORTS=${HA_REDIS_PORTS:-}
HA_SENTINEL_PORTS=${HA_SENTINEL_PORTS:-}
EOF
}

local_load_state() {
  [[ -f "$STATE_FILE" ]] || die "no local deployment found in $HA_DIR" \
    "deploy first: deploy-ha.sh --platform local --replicas 3 (or set HA_DIR to the folder used then)"
  # shellcheck disable=SC1090
  source "$STATE_FILE"
  if [[ -n "$REPLICAS" && "$REPLICAS" != "$HA_REPLICAS" ]]; then
    warn "--replicas $REPLICAS ignored: the deployment in $HA_DIR has $HA_REPLICAS (--down, then deploy again to change it)"
  fi
  REPLICAS=$HA_REPLICAS
  BIND=$HA_BIND; LB_PORT=$HA_LB_PORT; BASE_PORT=$HA_BASE_PORT
  # shellcheck disable=SC2153  # set by the state file, not a misspelling of HA_PG_PORTS
  PG_PORT=$HA_PG_PORT
  # shellcheck disable=SC2153
  REDIS_PORT=$HA_REDIS_PORT
  DB_URL=$HA_DATABASE_URL; RDS_URL=$HA_REDIS_URL; OWN_POSTGRES=$HA_OWN_POSTGRES; OWN_REDIS=$HA_OWN_REDIS
  API_DLL=$HA_API_DLL; LB_DLL=$HA_LB_DLL; DRAIN_DELAY=$HA_DRAIN_DELAY
  HA_DATA=${HA_DATA:-false}
  if [[ "$HA_DATA" == true ]]; then data_settings; fi
  if [[ "$STICKY" == false ]]; then STICKY=${HA_STICKY:-false}; fi
}

local_settings() {
  REPLICAS=${REPLICAS:-3}
  BIND=${HA_BIND:-127.0.0.1}
  LB_PORT=${HA_LB_PORT:-8080}
  BASE_PORT=${HA_BASE_PORT:-8081}
  PG_PORT=${HA_PG_PORT:-25433}
  REDIS_PORT=${HA_REDIS_PORT:-26380}
  DRAIN_DELAY=${SHUTDOWN_DRAIN_DELAY_SECONDS:-8}
  API_DLL=${JACKCWF_API_DLL:-$REPO_ROOT/src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll}
  LB_DLL=${JACKCWF_LB_DLL:-$REPO_ROOT/src/Jackcwf.LoadBalancer/bin/Release/net10.0/Jackcwf.LoadBalancer.dll}
}

replica_port() { printf '%s' $((BASE_PORT + $1 - 1)); }
replica_url() { printf 'http://%s:%s' "$BIND" "$(replica_port "$1")"; }

local_build() {
  local project=$1 dll=$2 variable=$3
  if [[ -f "$dll" ]]; then return 0; fi
  if [[ -n "${!variable:-}" ]]; then die "$variable points to a missing file: $dll" "build it, or unset $variable"; fi
  need dotnet "install the .NET 10 SDK"
  log "building $project in Release (dotnet build -c Release)"
  dotnet build -c Release "$REPO_ROOT/src/$project" -nologo -v quiet >"$HA_DIR/build-$project.log" 2>&1 \
    || { tail -n 30 "$HA_DIR/build-$project.log" >&2; die "building $project failed (output above)" "read $HA_DIR/build-$project.log"; }
}

local_start_postgres() {
  if [[ -n "${DATABASE_URL:-}" ]]; then
    DB_URL=$DATABASE_URL; OWN_POSTGRES=false
    log "PostgreSQL: using DATABASE_URL from the environment"
    return 0
  fi
  OWN_POSTGRES=true
  DB_URL="postgresql://postgres@127.0.0.1:$PG_PORT/jackcwf"
  local pgbin data="$HA_DIR/postgres/data"
  pgbin=$(postgres_bin)
  install -d -m 0755 "$HA_DIR/postgres"
  if [[ $EUID -eq 0 ]]; then
    chown postgres:postgres "$HA_DIR/postgres"
    runuser -u postgres -- test -w "$HA_DIR/postgres" \
      || die "the postgres user cannot reach $HA_DIR/postgres (a parent folder is private)" \
        "set HA_DIR to a folder under a world-searchable path, e.g. HA_DIR=/var/tmp/jackcwf-ha"
  fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    log "PostgreSQL: initdb in $data"
    as_pg_owner "$pgbin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >"$HA_DIR/postgres-initdb.log" 2>&1 \
      || die "initdb failed" "read $HA_DIR/postgres-initdb.log (the user postgres must be able to write $HA_DIR)"
  fi
  if as_pg_owner "$pgbin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL: already running on port $PG_PORT"
  else
    backup_configure "$data" "$PG_PORT"
    log "PostgreSQL: starting on 127.0.0.1:$PG_PORT"
    as_pg_owner "$pgbin/pg_ctl" -D "$data" -l "$HA_DIR/postgres/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null \
      || die "PostgreSQL did not start on port $PG_PORT" "read $HA_DIR/postgres/postgres.log; another server may use the port (set HA_PG_PORT)"
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='jackcwf'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE jackcwf" \
      || die "could not create the database jackcwf" "read $HA_DIR/postgres/postgres.log"
  fi
  backup_stanza
}

local_start_redis() {
  if [[ -n "${REDIS_URL:-}" ]]; then
    RDS_URL=$REDIS_URL; OWN_REDIS=false
    log "Redis: using REDIS_URL from the environment"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    RDS_URL=""; OWN_REDIS=false
    warn "redis-server is not installed: replicas run without the backplane (a stream can only be resumed on the replica that runs it). Fix: apt-get install redis-server"
    return 0
  fi
  OWN_REDIS=true
  RDS_URL="redis://127.0.0.1:$REDIS_PORT"
  if pid_alive "$(read_pid "$HA_DIR/redis.pid")"; then
    log "Redis: already running on port $REDIS_PORT"
    return 0
  fi
  log "Redis: starting on 127.0.0.1:$REDIS_PORT (no persistence)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$HA_DIR/redis.pid" --dir "$HA_DIR" --logfile "$HA_DIR/redis.log" \
    || die "redis-server did not start" "read $HA_DIR/redis.log; another server may use port $REDIS_PORT (set HA_REDIS_PORT)"
  local deadline=$((SECONDS + 10))
  until [[ -s "$HA_DIR/redis.pid" ]] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "Redis did not answer PING on port $REDIS_PORT" "read $HA_DIR/redis.log"
    sleep 0.2
  done
}

# Replicas inherit this script's environment, so any service variable set by the caller applies.
# The session key ring in PostgreSQL is encrypted with DATA_PROTECTION_KEY, which the service requires
# outside Development with PostgreSQL. Without one in the environment, the local platform makes its
# own and keeps it beside the deployment (mode 600), so sign-ins survive restarts of the replicas.
local_data_protection_key() {
  [[ -n "${DATA_PROTECTION_KEY:-}" ]] && return
  local file="$HA_DIR/data-protection.key"
  if [[ ! -s "$file" ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$file") || die "could not write $file" "check that $HA_DIR is writable"
    log "generated DATA_PROTECTION_KEY in $file (set DATA_PROTECTION_KEY to use your own)"
  fi
  DATA_PROTECTION_KEY=$(<"$file")
  export DATA_PROTECTION_KEY
}

local_start_replica() {
  local i=$1 port dir
  local_data_protection_key
  port=$(replica_port "$i")
  dir="$HA_DIR/replica-$i"
  mkdir -p "$dir"
  if [[ "$(http_code "http://$BIND:$port/health/live")" != "000" ]]; then
    die "port $port is already in use" "stop what listens there, or choose other ports with HA_BASE_PORT"
  fi
  local redis_env=(-u REDIS_URL)
  if [[ -n "$RDS_URL" ]]; then redis_env=("REDIS_URL=$RDS_URL"); fi
  (
    cd "$dir"
    exec env "${redis_env[@]}" ASPNETCORE_URLS="http://$BIND:$port" MIGRATE_ON_STARTUP=false DATABASE_URL="$DB_URL" \
      SHUTDOWN_DRAIN_DELAY_SECONDS="$DRAIN_DELAY" nohup dotnet "$API_DLL" >>"$HA_DIR/replica-$i.log" 2>&1 </dev/null
  ) &
  echo $! >"$HA_DIR/replica-$i.pid"
  log "replica $i: started (pid $!) on $(replica_url "$i")"
}

local_start_lb() {
  local backends="" i
  for ((i = 1; i <= REPLICAS; i++)); do backends+="${backends:+,}$(replica_url "$i")"; done
  if [[ "$(http_code "http://$BIND:$LB_PORT/")" != "000" ]]; then
    die "port $LB_PORT is already in use" "stop what listens there, or choose another port with HA_LB_PORT"
  fi
  (
    cd "$HA_DIR"
    exec env ASPNETCORE_URLS="http://$BIND:$LB_PORT" LB_BACKENDS="$backends" LB_STICKY="$STICKY" \
      nohup dotnet "$LB_DLL" >>"$HA_DIR/lb.log" 2>&1 </dev/null
  ) &
  echo $! >"$HA_DIR/lb.pid"
  log "load balancer: started (pid $!) on http://$BIND:$LB_PORT -> $backends"
}

# lb_sees_healthy URL: the balancer reports that replica as healthy (its /lb/health JSON).
lb_sees_healthy() {
  curl -s -m 3 "http://$BIND:$LB_PORT/lb/health" 2>/dev/null | grep -q "\"address\":\"$1/\",\"healthy\":true"
}

wait_lb_sees_healthy() {
  local url=$1 deadline=$((SECONDS + START_TIMEOUT))
  until lb_sees_healthy "$url"; do
    (( SECONDS < deadline )) || die "the load balancer does not see $url as healthy after ${START_TIMEOUT}s" "read $HA_DIR/lb.log"
    sleep 0.5
  done
}

local_deploy() {
  local_settings
  mkdir -p "$HA_DIR"
  # Keep the state folder out of git when it lives inside the repository.
  [[ -f "$HA_DIR/.gitignore" ]] || printf '*\n' >"$HA_DIR/.gitignore"
  if pid_alive "$(read_pid "$HA_DIR/lb.pid")" && [[ "$HA_DATA" == true ]] && grep -q '^HA_DATA=true' "$STATE_FILE" 2>/dev/null; then
    # Deploying again over a running --ha-data deployment starts the data-tier members that are not
    # running (a killed PostgreSQL member rejoins as a standby, a killed Redis as a replica).
    local_load_state
    log "deployment already running from $HA_DIR: starting the data-tier members that are down"
    data_start_etcd
    data_start_patroni
    data_start_redis
    return 0
  fi
  if pid_alive "$(read_pid "$HA_DIR/lb.pid")"; then
    die "a local deployment is already running from $HA_DIR" \
      "use --status, --rolling-restart or --down (or another HA_DIR for a second deployment)"
  fi
  need curl "apt-get install curl"
  need dotnet "install the .NET 10 SDK"
  if [[ -z "${DATABASE_URL:-}" ]]; then need psql "apt-get install postgresql-client, or set DATABASE_URL"; fi

  log "local deployment: $REPLICAS replicas, state folder $HA_DIR"
  local_build Jackcwf.Api "$API_DLL" JACKCWF_API_DLL
  local_build Jackcwf.LoadBalancer "$LB_DLL" JACKCWF_LB_DLL
  if [[ "$HA_DATA" == true ]]; then
    data_settings
    data_need
    if [[ $EUID -eq 0 ]]; then
      runuser -u postgres -- test -x "$HA_DIR" \
        || die "the postgres user cannot reach $HA_DIR (a parent folder is private)" \
          "set HA_DIR to a folder under a world-searchable path, e.g. HA_DIR=/var/tmp/jackcwf-ha"
    fi
    OWN_POSTGRES=false; OWN_REDIS=false
    # Written before the data tier starts, so --down finds what a failed start left running.
    DB_URL=""; RDS_URL=""
    local_write_state
    log "data tier: etcd x3, PostgreSQL x3 with Patroni (synchronous), Redis x3 with Sentinel x3"
    data_start_etcd
    data_start_patroni
    backup_stanza
    data_start_redis
    DB_URL=$(data_database_url); RDS_URL=$(data_redis_url)
  else
    local_start_postgres
    local_start_redis
  fi
  local_write_state

  log "migrating the database once (Jackcwf.Api migrate)"
  (cd "$HA_DIR" && DATABASE_URL="$DB_URL" dotnet "$API_DLL" migrate >>"$HA_DIR/migrate.log" 2>&1) \
    || { tail -n 20 "$HA_DIR/migrate.log" >&2; die "migration failed (last lines above)" "read $HA_DIR/migrate.log"; }

  local i
  for ((i = 1; i <= REPLICAS; i++)); do local_start_replica "$i"; done
  # The balancer starts alongside: its health checks admit each replica as soon as it is ready.
  local_start_lb
  for ((i = 1; i <= REPLICAS; i++)); do
    wait_for_url "$(replica_url "$i")/health/ready" "replica $i" "$HA_DIR/replica-$i.pid" "$HA_DIR/replica-$i.log"
    log "replica $i: ready"
  done
  wait_for_url "http://$BIND:$LB_PORT/lb/health" "load balancer" "$HA_DIR/lb.pid" "$HA_DIR/lb.log"
  for ((i = 1; i <= REPLICAS; i++)); do wait_lb_sees_healthy "$(replica_url "$i")"; done
  [[ "$(http_code "http://$BIND:$LB_PORT/health")" == "200" ]] \
    || die "GET /health through the load balancer did not answer 200" "read $HA_DIR/lb.log and the replica logs"
  log "load balancer: ready, all $REPLICAS replicas healthy"
  if [[ "$OWN_POSTGRES" == true || "$HA_DATA" == true ]]; then backup_schedule_start; fi
  local_summary
}

local_summary() {
  local i
  cat <<EOF

Jackcwf is running ($REPLICAS replicas behind the load balancer):
  application     http://$BIND:$LB_PORT/
  balancer        http://$BIND:$LB_PORT/lb/health   metrics http://$BIND:$LB_PORT/metrics
EOF
  for ((i = 1; i <= REPLICAS; i++)); do
    printf '  replica %-7s %s   (pid %s, log %s)\n' "$i" "$(replica_url "$i")" "$(read_pid "$HA_DIR/replica-$i.pid")" "$HA_DIR/replica-$i.log"
  done
  if [[ "$HA_DATA" == true ]]; then
    printf '  postgresql      Patroni cluster on 127.0.0.1 ports %s (leader %s; patronictl -c %s list)\n' "$HA_PG_PORTS" "$(data_leader)" "$(data_patroni_config 1)"
    printf '  redis           Sentinel service %s, sentinels on 127.0.0.1 ports %s (master %s)\n' "$DATA_REDIS_SERVICE" "$HA_SENTINEL_PORTS" "$(data_redis_master)"
    printf '  secrets         %s (database and Redis passwords)\n' "$HA_DIR/secrets"
  elif [[ "$OWN_POSTGRES" == true ]]; then
    printf '  postgresql      %s   (data %s)\n' "$DB_URL" "$HA_DIR/postgres/data"
  else
    printf '  postgresql      external (DATABASE_URL)\n'
  fi
  if [[ "$HA_DATA" == true ]]; then :
  elif [[ -n "$RDS_URL" ]]; then printf '  redis           %s\n' "$RDS_URL"; else printf '  redis           none (install redis-server)\n'; fi
  cat <<EOF
  logs            $HA_DIR/*.log
Health:           $SCRIPT_DIR/health-check.sh --platform local
Rolling restart:  $SCRIPT_DIR/deploy-ha.sh --platform local --rolling-restart
Stop:             $SCRIPT_DIR/deploy-ha.sh --platform local --down
EOF
}

local_rolling_restart() {
  local_load_state
  pid_alive "$(read_pid "$HA_DIR/lb.pid")" \
    || die "the load balancer of $HA_DIR is not running: a rolling restart would drop requests" "deploy first, or --down then deploy"
  local i started total_start=$SECONDS
  log "rolling restart of $REPLICAS replicas (drain delay ${DRAIN_DELAY}s each)"
  for ((i = 1; i <= REPLICAS; i++)); do
    started=$SECONDS
    # SIGTERM: readiness turns 503 at once, the balancer removes the replica within ~5 s while it
    # still serves, then the listener closes and running generations finish or are checkpointed.
    stop_pid "$HA_DIR/replica-$i.pid" "replica $i" "$STOP_TIMEOUT"
    local_start_replica "$i"
    wait_for_url "$(replica_url "$i")/health/ready" "replica $i" "$HA_DIR/replica-$i.pid" "$HA_DIR/replica-$i.log"
    # Only move on once the balancer sends traffic to it again, so two replicas are never out at once.
    wait_lb_sees_healthy "$(replica_url "$i")"
    log "replica $i: restarted and back in the load balancer in $((SECONDS - started))s"
  done
  log "rolling restart complete in $((SECONDS - total_start))s"
}

local_switchover() {
  local_load_state
  [[ "$HA_DATA" == true ]] || die "the deployment in $HA_DIR has a single PostgreSQL: nothing to switch over to" \
    "deploy with --ha-data (deploy-ha.sh --platform local --down, then --replicas 3 --ha-data)"
  data_switchover
}

# local_stop_replicas: every replica at once; each drains like in a rolling restart.
local_stop_replicas() {
  local f i
  for f in "$HA_DIR"/replica-*.pid; do
    [[ -e "$f" ]] || continue
    i=${f##*/replica-}; i=${i%.pid}
    stop_pid "$f" "replica $i" "$STOP_TIMEOUT" &
  done
  wait
}

local_down() {
  if [[ ! -f "$STATE_FILE" ]]; then
    log "nothing to stop in $HA_DIR"
    return 0
  fi
  local_load_state
  stop_pid "$HA_DIR/lb.pid" "load balancer" 15
  local_stop_replicas
  if [[ "$HA_DATA" == true ]]; then data_down; fi
  backup_schedule_stop
  if [[ "$OWN_REDIS" == true ]]; then stop_pid "$HA_DIR/redis.pid" "Redis" 10; fi
  if [[ "$OWN_POSTGRES" == true ]] && [[ -f "$HA_DIR/postgres/data/PG_VERSION" ]]; then
    local pgbin
    pgbin=$(postgres_bin)
    if as_pg_owner "$pgbin/pg_ctl" -D "$HA_DIR/postgres/data" status >/dev/null 2>&1; then
      log "stopping PostgreSQL"
      as_pg_owner "$pgbin/pg_ctl" -D "$HA_DIR/postgres/data" -m fast -w -t 30 stop >/dev/null
    fi
  fi
  rm -f "$STATE_FILE"
  if [[ "$PURGE" == true ]]; then
    rm -rf "$HA_DIR"
    log "stopped; state folder $HA_DIR deleted"
  else
    log "stopped; logs and PostgreSQL data kept in $HA_DIR (--down --purge deletes them)"
  fi
}

# shellcheck source=SCRIPTDIR/backup-local.sh disable=SC1091
source "$SCRIPT_DIR/backup-local.sh"

# ---------------------------------------------------------------------------------------------
# docker-compose: drives deployment/docker-compose.ha.yml
# ---------------------------------------------------------------------------------------------

COMPOSE_FILE_PATH=${HA_COMPOSE_FILE:-$REPO_ROOT/deployment/docker-compose.ha.yml}
STOP_GRACE=${HA_STOP_GRACE:-50}
ROLLOUT_TIMEOUT=${HA_ROLLOUT_TIMEOUT:-300}
COMPOSE=()

compose_init() {
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -f "$COMPOSE_FILE_PATH")
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose -f "$COMPOSE_FILE_PATH")
  else
    die "neither 'docker compose' nor 'docker-compose' is available" \
      "install the Docker Compose plugin (docker-compose-plugin) or apt-get install docker-compose"
  fi
  [[ -f "$COMPOSE_FILE_PATH" ]] || die "compose file not found: $COMPOSE_FILE_PATH" "set HA_COMPOSE_FILE"
  docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable" "start Docker (systemctl start docker) or set DOCKER_HOST"
}

compose() { log "+ ${COMPOSE[*]} $*"; "${COMPOSE[@]}" "$@"; }

web_containers() { "${COMPOSE[@]}" ps -q web 2>/dev/null || true; }

container_health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo missing; }

wait_containers_healthy() {
  local deadline=$((SECONDS + ROLLOUT_TIMEOUT)) id status pending
  while true; do
    pending=0
    for id in $(web_containers); do
      status=$(container_health "$id")
      [[ "$status" == "healthy" ]] || pending=$((pending + 1))
    done
    (( pending == 0 )) && return 0
    (( SECONDS < deadline )) || die "$pending web container(s) not healthy after ${ROLLOUT_TIMEOUT}s" "${COMPOSE[*]} logs web"
    sleep 2
  done
}

compose_deploy() {
  compose_init
  REPLICAS=${REPLICAS:-3}
  local env_file=${HA_ENV_FILE:-$REPO_ROOT/.env} secrets=${HA_SECRETS_DIR:-$REPO_ROOT/secrets}
  [[ -f "$env_file" ]] || die "$env_file is missing (the compose file reads it)" "cp .env.example .env and edit it"
  [[ -f "$secrets/postgres_password.txt" ]] || die "$secrets/postgres_password.txt is missing" "mkdir -p secrets && openssl rand -hex 24 > secrets/postgres_password.txt (and put it in DATABASE_URL)"
  [[ -f "$secrets/redis_password.txt" ]] || die "$secrets/redis_password.txt is missing (every Redis and sentinel requires it)" "openssl rand -hex 32 > secrets/redis_password.txt (and put it in REDIS_URL, see .env.example)"
  [[ -f "$secrets/traefik_users.htpasswd" ]] || die "$secrets/traefik_users.htpasswd is missing (basic auth of the Traefik dashboard)" "htpasswd -nB admin > secrets/traefik_users.htpasswd"
  grep -q '^REDIS_URL=.*serviceName=mymaster' "$env_file" \
    || die "$env_file has no Sentinel REDIS_URL: the replicas would run without the shared backplane" "uncomment the HA REDIS_URL line of .env.example in $env_file and set its password"
  local build=(--build)
  if [[ -n "${JACKCWF_IMAGE:-}" ]]; then
    # A released image: pull it and never build, or `up --build` would rebuild from this checkout
    # and replace the released image under the same name.
    log "using the released image $JACKCWF_IMAGE (pulled, not built)"
    compose pull migrate web
    build=(--no-build)
  fi
  if [[ -n "$(web_containers)" ]]; then
    # Already deployed: only change the number of replicas; never recreate running ones at once
    # (a new image is rolled out with --rolling-restart).
    compose up -d "${build[@]}" --no-recreate --scale "web=$REPLICAS"
  else
    compose up -d "${build[@]}" --scale "web=$REPLICAS"
  fi
  log "waiting until every web container is healthy"
  wait_containers_healthy
  compose ps
}

compose_rolling_restart() {
  compose_init
  local old before current count id new c status deadline
  mapfile -t old < <(web_containers)
  count=${#old[@]}
  (( count > 0 )) || die "no running web containers" "deploy first: deploy-ha.sh --platform docker-compose --replicas 3"
  log "rolling restart of $count web containers (Compose has no rolling update: one at a time)"
  for id in "${old[@]}"; do
    # One extra replica first, so capacity never drops below the target.
    mapfile -t before < <(web_containers)
    compose up -d --no-deps --no-recreate --scale "web=$((count + 1))" web
    deadline=$((SECONDS + ROLLOUT_TIMEOUT))
    while true; do
      new=""
      mapfile -t current < <(web_containers)
      for c in "${current[@]}"; do
        if [[ " ${before[*]} " != *" $c "* ]] && [[ "$(container_health "$c")" == "healthy" ]]; then new=$c; fi
      done
      [[ -n "$new" ]] && break
      (( SECONDS < deadline )) || die "the new web container did not become healthy in ${ROLLOUT_TIMEOUT}s" "${COMPOSE[*]} logs web"
      sleep 2
    done
    log "new container ${new:0:12} is healthy; stopping ${id:0:12} (SIGTERM, ${STOP_GRACE}s grace: it drains first)"
    docker stop -t "$STOP_GRACE" "$id" >/dev/null
    docker rm "$id" >/dev/null
  done
  status=$(web_containers | wc -l)
  log "rolling restart complete: $status web containers"
}

compose_down() {
  compose_init
  compose down --timeout "$STOP_GRACE"
}

# ---------------------------------------------------------------------------------------------
# kubernetes: kubectl apply -k overlay (or all-in-one.yml), rollout restart + status
# ---------------------------------------------------------------------------------------------

K8S_DIR="$REPO_ROOT/deployment/kubernetes"
DEPLOYMENT="deployment/jackcwf-backend"

kube_init() {
  need kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/)"
  # Without a context kubectl silently talks to localhost:8080, which may be the local balancer.
  kubectl config current-context >/dev/null 2>&1 \
    || die "kubectl has no current context" "set KUBECONFIG or run kubectl config use-context <cluster>"
  kubectl version --request-timeout=10s >/dev/null 2>&1 \
    || die "the cluster of context '$(kubectl config current-context)' is not reachable" "check the cluster and your credentials (kubectl cluster-info)"
  if [[ "$ALL_IN_ONE" == true ]]; then
    KUBE_SOURCE=(-f "$K8S_DIR/all-in-one.yml")
  else
    [[ -d "$K8S_DIR/overlays/$OVERLAY" ]] || die "no overlay '$OVERLAY' in $K8S_DIR/overlays" "use --overlay small, medium or large, or --all-in-one"
    KUBE_SOURCE=(-k "$K8S_DIR/overlays/$OVERLAY")
  fi
}

kube() { log "+ kubectl $*"; kubectl "$@"; }

kube_deploy() {
  kube_init
  # A Job's pod template is immutable: applying a new image to the finished migration Job of the
  # previous release fails ("field is immutable") until its TTL deletes it. Delete it first (a
  # finished Job does nothing); apply creates it again and it migrates for the new release.
  kube -n "$NAMESPACE" delete job jackcwf-migrate --ignore-not-found --wait=true
  kube apply "${KUBE_SOURCE[@]}"
  kube -n "$NAMESPACE" wait --for=condition=complete job/jackcwf-migrate --timeout="${ROLLOUT_TIMEOUT}s"
  if [[ -n "$REPLICAS" ]]; then
    warn "the HorizontalPodAutoscaler keeps replicas within its own bounds; --replicas sets the current count only"
    kube -n "$NAMESPACE" scale "$DEPLOYMENT" --replicas="$REPLICAS"
  fi
  kube -n "$NAMESPACE" rollout status "$DEPLOYMENT" --timeout="${ROLLOUT_TIMEOUT}s"
  kube -n "$NAMESPACE" get pods -l app.kubernetes.io/name=jackcwf -o wide
}

kube_rolling_restart() {
  kube_init
  kube -n "$NAMESPACE" rollout restart "$DEPLOYMENT"
  kube -n "$NAMESPACE" rollout status "$DEPLOYMENT" --timeout="${ROLLOUT_TIMEOUT}s"
}

kube_down() {
  kube_init
  warn "deleting every resource of the deployment (the namespace too, with any PostgreSQL volume in it)"
  kube delete "${KUBE_SOURCE[@]}" --ignore-not-found --wait=true
}

# ---------------------------------------------------------------------------------------------

status() {
  local args=(--platform "$PLATFORM")
  if [[ "$PLATFORM" == kubernetes ]]; then args+=(--namespace "$NAMESPACE"); fi
  exec "$SCRIPT_DIR/health-check.sh" "${args[@]}"
}

case "$PLATFORM:$ACTION" in
  *:status) status ;;
  local:deploy) local_deploy ;;
  local:rolling-restart) local_rolling_restart ;;
  local:down) local_down ;;
  local:switchover) local_switchover ;;
  *:switchover) die "--switchover is for --platform local with --ha-data" "on Kubernetes, CloudNativePG switches over with: kubectl cnpg promote <cluster> <instance>" ;;
  local:backup) local_backup ;;
  local:backups) local_backups ;;
  local:restore) local_restore "$RESTORE_TO" ;;
  local:verify-backups) local_verify ;;
  local:backup-schedule) local_load_state; backup_schedule_loop ;;
  *:backup|*:backups|*:restore|*:verify-backups|*:backup-schedule)
    die "--$ACTION is for --platform local" "Compose: see the backup service in docs/deployment/DEPLOYMENT_RECOVERY_GUIDE.md; Kubernetes: the CloudNativePG backups" ;;
  docker-compose:deploy) compose_deploy ;;
  docker-compose:rolling-restart) compose_rolling_restart ;;
  docker-compose:down) compose_down ;;
  kubernetes:deploy) kube_deploy ;;
  kubernetes:rolling-restart) kube_rolling_restart ;;
  kubernetes:down) kube_down ;;
esac

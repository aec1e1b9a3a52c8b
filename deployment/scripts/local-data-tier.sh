#!/usr/bin/env bash
# The highly available data tier of the local platform, sourced by deploy-ha.sh (--ha-data,
# --switchover) and health-check.sh: a three-member etcd, three PostgreSQL servers managed by
# Patroni with synchronous replication, and Redis (a master, two replicas) watched by three
# sentinels. Everything listens on 127.0.0.1 and is stopped by PID. Configuration templates:
# deployment/patroni/patroni.yml.template, deployment/redis-sentinel/*.conf.template.
# See docs/deployment/local-ha.md ("Highly available data tier").

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  printf 'local-data-tier.sh: ERROR: this is a library of deploy-ha.sh and health-check.sh, not a command\n  fix: deployment/scripts/deploy-ha.sh --platform local --replicas 3 --ha-data (see --help)\n' >&2
  exit 2
fi

DATA_TEMPLATES="$REPO_ROOT/deployment"
DATA_MEMBERS=3
DATA_DB_NAME=jackcwf
DATA_REDIS_SERVICE=mymaster

# Port lists (comma-separated, three entries each) may be overridden from the environment.
data_settings() {
  HA_PG_PORTS=${HA_PG_PORTS:-25433,25434,25435}
  HA_PATRONI_PORTS=${HA_PATRONI_PORTS:-28008,28009,28010}
  HA_ETCD_PORTS=${HA_ETCD_PORTS:-22379,22381,22383}
  HA_ETCD_PEER_PORTS=${HA_ETCD_PEER_PORTS:-22380,22382,22384}
  HA_REDIS_PORTS=${HA_REDIS_PORTS:-26380,26381,26382}
  HA_SENTINEL_PORTS=${HA_SENTINEL_PORTS:-26390,26391,26392}
  local v list
  for v in HA_PG_PORTS HA_PATRONI_PORTS HA_ETCD_PORTS HA_ETCD_PEER_PORTS HA_REDIS_PORTS HA_SENTINEL_PORTS; do
    IFS=, read -r -a list <<<"${!v}"
    [[ ${#list[@]} -eq $DATA_MEMBERS ]] || die "$v must list $DATA_MEMBERS ports (got '${!v}')" "e.g. $v=25433,25434,25435, or leave it unset"
  done
}

# data_port LIST I: the I-th (1-based) port of a comma-separated list.
data_port() { local list; IFS=, read -r -a list <<<"$1"; printf '%s' "${list[$(($2 - 1))]}"; }

# render TEMPLATE OUT KEY=VALUE...: copies TEMPLATE to OUT replacing every {{KEY}}.
data_render() {
  local template=$1 out=$2 text pair
  shift 2
  text=$(<"$template")
  for pair in "$@"; do text=${text//"{{${pair%%=*}}}"/${pair#*=}}; done
  [[ "$text" != *"{{"* ]] || die "unfilled placeholder in $out: $(grep -o '{{[A-Z_]*}}' <<<"$text" | head -1)" "a bug in local-data-tier.sh"
  printf '%s\n' "$text" >"$out"
}

# A password generated once per state folder, kept mode 600 under HA_DIR/secrets.
data_secret() {
  local f="$HA_DIR/secrets/$1"
  if [[ ! -s "$f" ]]; then
    install -d -m 0700 "$HA_DIR/secrets"
    (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$f")
  fi
  cat "$f"
}

data_need() {
  need etcd "apt-get install etcd-server (listed in tests/apt-packages.txt)"
  need etcdctl "apt-get install etcd-client"
  need patroni "apt-get install patroni python3-etcd"
  need patronictl "apt-get install patroni"
  need redis-server "apt-get install redis-server"
  need redis-sentinel "apt-get install redis-sentinel"
  need redis-cli "apt-get install redis-tools"
  need psql "apt-get install postgresql-client"
  need jq "apt-get install jq"
}

data_port_free() {
  local port=$1 what=$2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port ($what) is already in use" "stop what listens there, or choose other ports (see deploy-ha.sh --help)"
  fi
}

data_etcd_endpoints() {
  local i out=""
  for ((i = 1; i <= DATA_MEMBERS; i++)); do out+="${out:+,}http://127.0.0.1:$(data_port "$HA_ETCD_PORTS" "$i")"; done
  printf '%s' "$out"
}

data_start_etcd() {
  local i cluster="" client peer dir
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    cluster+="${cluster:+,}etcd$i=http://127.0.0.1:$(data_port "$HA_ETCD_PEER_PORTS" "$i")"
  done
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    client=$(data_port "$HA_ETCD_PORTS" "$i"); peer=$(data_port "$HA_ETCD_PEER_PORTS" "$i")
    dir="$HA_DIR/etcd/etcd$i"
    if pid_alive "$(read_pid "$HA_DIR/etcd$i.pid")"; then log "etcd $i: already running"; continue; fi
    data_port_free "$client" "etcd $i client"; data_port_free "$peer" "etcd $i peer"
    local state=new
    [[ -d "$dir/member" ]] && state=existing
    mkdir -p "$dir"
    # Short heartbeats for a loopback cluster; --enable-v2 also serves Patroni's older etcd: API.
    (
      exec nohup etcd --name "etcd$i" --data-dir "$dir" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$cluster" --initial-cluster-state "$state" --initial-cluster-token jackcwf-local \
        --heartbeat-interval 100 --election-timeout 1000 --enable-v2=true \
        >>"$HA_DIR/etcd$i.log" 2>&1 </dev/null
    ) &
    echo $! >"$HA_DIR/etcd$i.pid"
    log "etcd $i: started (pid $!) on 127.0.0.1:$client"
  done
  local deadline=$((SECONDS + START_TIMEOUT))
  until ETCDCTL_API=3 etcdctl --endpoints "$(data_etcd_endpoints)" endpoint health >/dev/null 2>&1; do
    (( SECONDS < deadline )) || die "etcd did not become healthy within ${START_TIMEOUT}s" "read $HA_DIR/etcd1.log"
    sleep 0.5
  done
  log "etcd: three members healthy"
}

data_patroni_config() { printf '%s/patroni/pg%s.yml' "$HA_DIR" "$1"; }

# data_start_patroni [I...]: starts the Patroni of the members given (default: all) that are not
# running, and waits until there is a leader and all of them run (DATA_START_FIX: a hint added to
# a failure). deploy-ha.sh --restore sets
# DATA_BOOTSTRAP_METHOD=pgbackrest (with DATA_RESTORE_ARGS) for the member it restores, and
# DATA_REPLICA_METHODS for the members that clone from it.
data_start_patroni() {
  local i pg rest cfg superuser members=("$@")
  if (( ${#members[@]} == 0 )); then for ((i = 1; i <= DATA_MEMBERS; i++)); do members+=("$i"); done; fi
  superuser=$(data_secret postgres-password)
  install -d -m 0755 "$HA_DIR/patroni"
  # pgBackRest (backup-local.sh): one repository for the cluster, whichever member is the primary.
  backup_configure_ha
  for i in "${members[@]}"; do
    pg=$(data_port "$HA_PG_PORTS" "$i"); rest=$(data_port "$HA_PATRONI_PORTS" "$i")
    cfg=$(data_patroni_config "$i")
    if pid_alive "$(read_pid "$HA_DIR/patroni$i.pid")"; then log "patroni pg$i: already running"; continue; fi
    data_port_free "$pg" "PostgreSQL pg$i"; data_port_free "$rest" "Patroni REST API pg$i"
    install -d -m 0700 "$HA_DIR/patroni/pg$i"
    data_render_member "$i" "$cfg"
    chmod 0600 "$cfg"
    if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$HA_DIR/patroni"; fi
    # setpriv execs Patroni itself as postgres (runuser would stay as its parent), so the PID
    # recorded is Patroni's own.
    local as_postgres=()
    if [[ $EUID -eq 0 ]]; then as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
    (
      cd "$HA_DIR/patroni" || exit 1
      exec nohup "${as_postgres[@]}" patroni "$cfg" >>"$HA_DIR/patroni$i.log" 2>&1 </dev/null
    ) &
    echo $! >"$HA_DIR/patroni$i.pid"
    log "patroni pg$i: started (pid $!), PostgreSQL on 127.0.0.1:$pg, REST API on 127.0.0.1:$rest"
  done
  local deadline=$((SECONDS + START_TIMEOUT)) leader
  until leader=$(data_leader) && [[ -n "$leader" ]] && [[ "$(data_members_running)" -ge ${#members[@]} ]]; do
    (( SECONDS < deadline )) || die "Patroni: no leader with ${#members[@]} members running after ${START_TIMEOUT}s" "read $HA_DIR/patroni${members[0]}.log and $HA_DIR/patroni/pg${members[0]}/patroni.log${DATA_START_FIX:+; $DATA_START_FIX}"
    for i in "${members[@]}"; do
      pid_alive "$(read_pid "$HA_DIR/patroni$i.pid")" || data_member_exited "$i"
    done
    sleep 1
  done
  log "Patroni: leader $leader, $(data_members_running) members running"
  local port
  port=$(data_primary_port)
  if ! PGPASSWORD=$superuser psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$DATA_DB_NAME'" | grep -q 1; then
    PGPASSWORD=$superuser psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE $DATA_DB_NAME" \
      || die "could not create the database $DATA_DB_NAME on the primary (port $port)" "read $HA_DIR/patroni/pg1/patroni.log"
  fi
}

# data_member_exited I: a member's Patroni ended while it was awaited; says why (PostgreSQL's last
# fatal error, e.g. a recovery target it could not reach) and fails.
data_member_exited() {
  local i=$1 reason
  tail -n 20 "$HA_DIR/patroni$i.log" >&2
  reason=$(tail -n 200 "$HA_DIR/patroni$i.log" | grep -a -E '(FATAL|PANIC): ' | grep -a -v -E 'starting up|not accepting connections|shutting down' \
    | tail -n 1 | sed -E 's/.*(FATAL|PANIC): +//' || true)
  die "patroni pg$i exited (last log lines above)${reason:+; PostgreSQL: $reason}" "read $HA_DIR/patroni$i.log${DATA_START_FIX:+; $DATA_START_FIX}"
}

# data_render_member I FILE: the Patroni configuration of member I. With pgBackRest (backup-local.sh)
# the member archives to the deployment's repository when it is the primary, a standby fetches
# missing WAL from it, and a new standby is restored from it; HA_PG_ARCHIVE_MODE,
# HA_PG_ARCHIVE_COMMAND and HA_PG_RESTORE_COMMAND replace that with the operator's own commands.
data_render_member() {
  local i=$1 cfg=$2 hosts="" data archive_mode archive_command restore_command replica_methods=basebackup
  local bootstrap_command=/bin/false replica_command=/bin/false j
  for ((j = 1; j <= DATA_MEMBERS; j++)); do hosts+="${hosts:+,}127.0.0.1:$(data_port "$HA_ETCD_PORTS" "$j")"; done
  data="$HA_DIR/patroni/pg$i/data"
  archive_mode=${HA_PG_ARCHIVE_MODE:-off}
  archive_command=${HA_PG_ARCHIVE_COMMAND:-/bin/true}
  restore_command=${HA_PG_RESTORE_COMMAND:-/bin/false}
  if backup_enabled; then
    archive_mode=${HA_PG_ARCHIVE_MODE:-on}
    archive_command=${HA_PG_ARCHIVE_COMMAND:-$(backup_member_command "$data" archive-push %p)}
    restore_command=${HA_PG_RESTORE_COMMAND:-$(backup_member_command "$data" archive-get %f '"%p"')}
    bootstrap_command="$(backup_member_command "$data" "${DATA_RESTORE_ARGS:-}" restore)"
    replica_command="$(backup_member_command "$data" --type=standby restore)"
    replica_methods="pgbackrest, basebackup"
  fi
  data_render "$DATA_TEMPLATES/patroni/patroni.yml.template" "$cfg" \
    MEMBER="pg$i" LOG_DIR="$HA_DIR/patroni/pg$i" REST_PORT="$(data_port "$HA_PATRONI_PORTS" "$i")" ETCD_HOSTS="$hosts" \
    REPLICATION_USER=replicator PG_PORT="$(data_port "$HA_PG_PORTS" "$i")" DATA_DIR="$data" BIN_DIR="$(postgres_bin)" \
    PGPASS="$HA_DIR/patroni/pg$i/pgpass" SUPERUSER_PASSWORD="$(data_secret postgres-password)" \
    REPLICATION_PASSWORD="$(data_secret replication-password)" SOCKET_DIR="$HA_DIR/patroni/pg$i" \
    ARCHIVE_MODE="$archive_mode" ARCHIVE_COMMAND="$archive_command" ARCHIVE_TIMEOUT="${HA_ARCHIVE_TIMEOUT:-60}" \
    RESTORE_COMMAND="$restore_command" BOOTSTRAP_METHOD="${DATA_BOOTSTRAP_METHOD:-initdb}" \
    BOOTSTRAP_RESTORE_COMMAND="$bootstrap_command" REPLICA_METHODS="${DATA_REPLICA_METHODS:-$replica_methods}" \
    REPLICA_RESTORE_COMMAND="$replica_command"
}

runuser_if_root() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The /cluster view of the first Patroni that answers (members, roles, lag), or nothing.
data_cluster_json() {
  local i out
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    out=$(curl -s -m 2 "http://127.0.0.1:$(data_port "$HA_PATRONI_PORTS" "$i")/cluster" 2>/dev/null) && [[ "$out" == *members* ]] && { printf '%s' "$out"; return 0; }
  done
  return 1
}

data_leader() { data_cluster_json | jq -r '.members[] | select(.role == "leader") | .name' 2>/dev/null; }

data_primary_port() { data_cluster_json | jq -r '.members[] | select(.role == "leader") | .port' 2>/dev/null; }

data_members_running() { data_cluster_json | jq '[.members[] | select(.state == "running" or .state == "streaming")] | length' 2>/dev/null; }

data_postmaster_pid() {
  local f="$HA_DIR/patroni/pg$1/data/postmaster.pid"
  if [[ -f "$f" ]]; then head -n 1 "$f"; fi
}

data_database_url() {
  local i hosts=""
  for ((i = 1; i <= DATA_MEMBERS; i++)); do hosts+="${hosts:+,}127.0.0.1:$(data_port "$HA_PG_PORTS" "$i")"; done
  printf 'postgresql://postgres:%s@%s/%s?target_session_attrs=read-write' "$(data_secret postgres-password)" "$hosts" "$DATA_DB_NAME"
}

data_redis_url() {
  local i hosts=""
  for ((i = 1; i <= DATA_MEMBERS; i++)); do hosts+="${hosts:+,}127.0.0.1:$(data_port "$HA_SENTINEL_PORTS" "$i")"; done
  printf 'redis+sentinel://:%s@%s/%s' "$(data_secret redis-password)" "$hosts" "$DATA_REDIS_SERVICE"
}

data_start_redis() {
  local i port master password dir
  password=$(data_secret redis-password)
  master=$(data_port "$HA_REDIS_PORTS" 1)
  dir="$HA_DIR/redis"
  install -d -m 0700 "$dir"
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    port=$(data_port "$HA_REDIS_PORTS" "$i")
    if pid_alive "$(read_pid "$dir/redis$i.pid")"; then log "redis $i: already running"; continue; fi
    data_port_free "$port" "Redis $i"
    if [[ ! -f "$dir/redis$i.conf" ]]; then
      data_render "$DATA_TEMPLATES/redis-sentinel/redis.conf.template" "$dir/redis$i.conf" \
        PORT="$port" PID_FILE="$dir/redis$i.pid" LOG_FILE="$dir/redis$i.log" DIR="$dir" PASSWORD="$password"
      if (( i > 1 )); then printf 'replicaof 127.0.0.1 %s\n' "$master" >>"$dir/redis$i.conf"; fi
      chmod 0600 "$dir/redis$i.conf"
    fi
    # Each server writes its RDB (used only for replication) under its own name.
    redis-server "$dir/redis$i.conf" --dbfilename "redis$i.rdb" || die "redis $i did not start" "read $dir/redis$i.log"
  done
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    port=$(data_port "$HA_SENTINEL_PORTS" "$i")
    if pid_alive "$(read_pid "$dir/sentinel$i.pid")"; then log "sentinel $i: already running"; continue; fi
    data_port_free "$port" "sentinel $i"
    if [[ ! -f "$dir/sentinel$i.conf" ]]; then
      data_render "$DATA_TEMPLATES/redis-sentinel/sentinel.conf.template" "$dir/sentinel$i.conf" \
        PORT="$port" PID_FILE="$dir/sentinel$i.pid" LOG_FILE="$dir/sentinel$i.log" DIR="$dir" MASTER_PORT="$master" PASSWORD="$password"
      chmod 0600 "$dir/sentinel$i.conf"
    fi
    redis-sentinel "$dir/sentinel$i.conf" || die "sentinel $i did not start" "read $dir/sentinel$i.log"
  done
  local deadline=$((SECONDS + START_TIMEOUT)) n
  until n=$(REDISCLI_AUTH=$password redis-cli -p "$(data_port "$HA_SENTINEL_PORTS" 1)" sentinel master "$DATA_REDIS_SERVICE" 2>/dev/null \
      | awk 'p {print; exit} $0 == "num-other-sentinels" {p=1}') && [[ "$n" == $((DATA_MEMBERS - 1)) ]] \
      && [[ "$(data_redis_master)" != "" ]] && [[ "$(data_redis_replicas_online)" == $((DATA_MEMBERS - 1)) ]]; do
    (( SECONDS < deadline )) || die "Redis Sentinel: not every sentinel and replica joined within ${START_TIMEOUT}s" "read $dir/sentinel1.log and $dir/redis2.log"
    sleep 0.5
  done
  log "Redis: master $(data_redis_master), $((DATA_MEMBERS - 1)) replicas, $DATA_MEMBERS sentinels"
}

# host:port of the master as the sentinels announce it.
data_redis_master() {
  local i out
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    out=$(REDISCLI_AUTH=$(data_secret redis-password) redis-cli -p "$(data_port "$HA_SENTINEL_PORTS" "$i")" \
      sentinel get-master-addr-by-name "$DATA_REDIS_SERVICE" 2>/dev/null | paste -sd: -) && [[ "$out" == *:* ]] && { printf '%s' "$out"; return 0; }
  done
  return 1
}

data_redis_replicas_online() {
  local master
  master=$(data_redis_master) || return 1
  REDISCLI_AUTH=$(data_secret redis-password) redis-cli -p "${master##*:}" info replication 2>/dev/null | grep -c '^slave[0-9]*:.*state=online'
}

data_switchover() {
  local leader before after
  leader=$(data_leader)
  [[ -n "$leader" ]] || die "Patroni has no leader to switch over from" "health-check.sh --platform local shows the members"
  log "PostgreSQL: planned switchover from $leader (patronictl switchover --force)"
  runuser_if_root patronictl -c "$(data_patroni_config 1)" switchover --leader "$leader" --force \
    || die "patronictl switchover failed (output above)" "patronictl -c $(data_patroni_config 1) list"
  local deadline=$((SECONDS + START_TIMEOUT))
  until after=$(data_leader) && [[ -n "$after" && "$after" != "$leader" ]] && [[ "$(data_members_running)" == "$DATA_MEMBERS" ]]; do
    (( SECONDS < deadline )) || die "no new leader with every member running within ${START_TIMEOUT}s of the switchover" "patronictl -c $(data_patroni_config 1) list"
    sleep 0.5
  done
  before=$leader
  log "PostgreSQL: $after is the primary now ($before rejoined as a standby)"
}

data_scope() { printf 'jackcwf'; }

# data_stop_postgres [LEADER]: stops every member's Patroni (which stops its PostgreSQL), the
# standbys first and the leader last, so no standby takes over while the cluster goes down.
data_stop_postgres() {
  local leader=${1:-} i pid
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    [[ "pg$i" == "$leader" ]] || stop_pid "$HA_DIR/patroni$i.pid" "patroni pg$i" 60 &
  done
  wait
  if [[ -n "$leader" ]]; then stop_pid "$HA_DIR/patroni${leader#pg}.pid" "patroni $leader" 60; fi
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    # A PostgreSQL left behind by a Patroni that was killed: stop it by its own PID.
    pid=$(data_postmaster_pid "$i")
    if pid_alive "$pid"; then
      log "stopping PostgreSQL pg$i left without its Patroni (pid $pid)"
      kill -INT "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 60))
      while pid_alive "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
    fi
  done
}

data_down() {
  local i
  for ((i = 1; i <= DATA_MEMBERS; i++)); do stop_pid "$HA_DIR/redis/sentinel$i.pid" "sentinel $i" 10 & done
  wait
  for ((i = 1; i <= DATA_MEMBERS; i++)); do stop_pid "$HA_DIR/redis/redis$i.pid" "redis $i" 10 & done
  wait
  # SIGTERM to Patroni stops its PostgreSQL (fast shutdown) before it exits.
  data_stop_postgres "$(data_leader 2>/dev/null || true)"
  for ((i = 1; i <= DATA_MEMBERS; i++)); do stop_pid "$HA_DIR/etcd$i.pid" "etcd $i" 15 & done
  wait
}

# health-check.sh: one line per PostgreSQL member, Redis server and sentinel, with role, address,
# pid and (standbys, replicas) lag. Uses report() of health-check.sh.
data_report() {
  local cluster i name role port state lag pid patroni_pid detail
  if ! cluster=$(data_cluster_json); then
    report FAIL "postgresql" "no Patroni REST API answers (ports $HA_PATRONI_PORTS); read $HA_DIR/patroni1.log"
  else
    for ((i = 1; i <= DATA_MEMBERS; i++)); do
      name="pg$i"
      port=$(data_port "$HA_PG_PORTS" "$i")
      role=$(jq -r --arg n "$name" '.members[] | select(.name == $n) | .role' <<<"$cluster")
      state=$(jq -r --arg n "$name" '.members[] | select(.name == $n) | .state' <<<"$cluster")
      lag=$(jq -r --arg n "$name" '.members[] | select(.name == $n) | .lag // ""' <<<"$cluster")
      pid=$(data_postmaster_pid "$i")
      patroni_pid=$(read_pid "$HA_DIR/patroni$i.pid")
      pid_alive "$pid" || pid=""
      pid_alive "$patroni_pid" || patroni_pid=""
      detail="127.0.0.1:$port (pid ${pid:-none}, patroni pid ${patroni_pid:-none}"
      case "$role" in
        leader)
          if [[ "$state" == running ]]; then report OK "postgresql primary" "$detail)"; else report FAIL "postgresql primary" "$detail, $state)"; fi ;;
        sync_standby|replica)
          local sync=""
          [[ "$role" == sync_standby ]] && sync="synchronous, "
          if [[ "$state" == running || "$state" == streaming ]] && [[ "$lag" =~ ^[0-9]+$ ]]; then
            report OK "postgresql standby" "$detail, ${sync}lag $lag bytes)"
          else
            report FAIL "postgresql standby" "$detail, ${sync}$state, lag ${lag:-unknown})"
          fi ;;
        *)
          report FAIL "postgresql member" "$detail, not in the cluster; read $HA_DIR/patroni/pg$i/patroni.log)" ;;
      esac
    done
  fi
  local password master mport info offset replica_offset
  password=$(data_secret redis-password)
  master=$(data_redis_master || true)
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    port=$(data_port "$HA_REDIS_PORTS" "$i")
    pid=$(read_pid "$HA_DIR/redis/redis$i.pid")
    pid_alive "$pid" || pid=""
    info=$(REDISCLI_AUTH=$password redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r' || true)
    if [[ -z "$info" ]]; then
      report FAIL "redis server" "127.0.0.1:$port (pid ${pid:-none}) does not answer"
      continue
    fi
    role=$(sed -n 's/^role://p' <<<"$info")
    if [[ "$role" == master ]]; then
      if [[ "$master" == "127.0.0.1:$port" ]]; then report OK "redis master" "127.0.0.1:$port (pid ${pid:-none})"
      else report FAIL "redis master" "127.0.0.1:$port (pid ${pid:-none}) is a master the sentinels do not announce (they say ${master:-nothing})"; fi
    else
      mport=$(sed -n 's/^master_port://p' <<<"$info")
      offset=$(sed -n 's/^slave_repl_offset://p' <<<"$info")
      replica_offset=$(REDISCLI_AUTH=$password redis-cli -p "$mport" info replication 2>/dev/null | tr -d '\r' | sed -n 's/^master_repl_offset://p' || true)
      lag=""
      if [[ "$offset" =~ ^[0-9]+$ && "$replica_offset" =~ ^[0-9]+$ ]]; then lag=$((replica_offset - offset)); (( lag < 0 )) && lag=0; fi
      if [[ "$(sed -n 's/^master_link_status://p' <<<"$info")" == up ]]; then
        report OK "redis replica" "127.0.0.1:$port (pid ${pid:-none}, of 127.0.0.1:$mport, lag ${lag:-?} bytes)"
      else
        report FAIL "redis replica" "127.0.0.1:$port (pid ${pid:-none}, link to 127.0.0.1:$mport down)"
      fi
    fi
  done
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    port=$(data_port "$HA_SENTINEL_PORTS" "$i")
    pid=$(read_pid "$HA_DIR/redis/sentinel$i.pid")
    pid_alive "$pid" || pid=""
    if REDISCLI_AUTH=$password redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
      report OK "redis sentinel" "127.0.0.1:$port (pid ${pid:-none}, master ${master:-unknown})"
    else
      report FAIL "redis sentinel" "127.0.0.1:$port (pid ${pid:-none}) does not answer"
    fi
  done
  for ((i = 1; i <= DATA_MEMBERS; i++)); do
    port=$(data_port "$HA_ETCD_PORTS" "$i")
    pid=$(read_pid "$HA_DIR/etcd$i.pid")
    pid_alive "$pid" || pid=""
    if ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$port" endpoint health >/dev/null 2>&1; then
      report OK "etcd" "127.0.0.1:$port (pid ${pid:-none})"
    else
      report FAIL "etcd" "127.0.0.1:$port (pid ${pid:-none}) unhealthy"
    fi
  done
}

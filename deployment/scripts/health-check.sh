#!/usr/bin/env bash
# Reports the health of every Jackcwf replica and of the load balancer; exits non-zero when any of
# them is unhealthy. See docs/deployment/local-ha.md.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

usage() {
  cat <<'EOF'
Usage: health-check.sh --platform local|docker-compose|kubernetes [--continuous] [--interval S]

Checks, once or every S seconds:
  local           every replica started by deploy-ha.sh (process alive, GET /health/ready = 200),
                  the load balancer (process alive, /lb/health lists every replica as healthy)
                  and GET /health through the balancer. With --ha-data also one line per
                  PostgreSQL member (primary / sync standby / standby, address, pid of PostgreSQL
                  and of its Patroni, replication lag), per Redis server (master / replica, pid,
                  lag), per sentinel and per etcd member. The state folder is HA_DIR
                  (default <repo>/.ha-local), as for deploy-ha.sh.
  docker-compose  every web container's Docker health (docker compose ps) and GET /health
                  through Traefik (HA_LB_URL, default http://localhost/).
  kubernetes      every pod of the Deployment ready, the Service with ready endpoints, and the
                  Deployment's ready count equal to its desired count.

Options:
  --platform P      local | docker-compose | kubernetes (required).
  --continuous      Check again every --interval seconds until interrupted; the exit code is
                    that of the last check.
  --interval S      Seconds between checks with --continuous (default 10).
  --namespace NS    kubernetes: namespace (default jackcwf).
  -h, --help        This help.

Exit code: 0 when everything is healthy, 1 when something is not, 2 on a usage error.
EOF
}

die() {
  printf 'health-check: ERROR: %s\n' "$1" >&2
  if [[ $# -gt 1 ]]; then printf '  fix: %s\n' "$2" >&2; fi
  exit 2
}

PLATFORM=""
CONTINUOUS=false
INTERVAL=10
NAMESPACE="jackcwf"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --platform) PLATFORM=${2:-}; shift 2 || die "--platform needs a value" "--platform local|docker-compose|kubernetes" ;;
    --platform=*) PLATFORM=${1#*=}; shift ;;
    --continuous) CONTINUOUS=true; shift ;;
    --interval) INTERVAL=${2:-}; shift 2 || die "--interval needs a number of seconds" "--interval 10" ;;
    --interval=*) INTERVAL=${1#*=}; shift ;;
    --namespace) NAMESPACE=${2:-}; shift 2 || die "--namespace needs a name" "--namespace jackcwf" ;;
    --namespace=*) NAMESPACE=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1" "run health-check.sh --help" ;;
  esac
done

case "$PLATFORM" in
  local|docker-compose|kubernetes) ;;
  "") die "--platform is required" "health-check.sh --platform local (see --help)" ;;
  *) die "unknown platform '$PLATFORM'" "use --platform local, docker-compose or kubernetes" ;;
esac
[[ "$INTERVAL" =~ ^[1-9][0-9]*$ ]] || die "--interval must be a whole number of seconds (got '$INTERVAL')" "--interval 10"

FAILURES=0
# report OK|FAIL NAME DETAIL: one aligned line per component.
report() {
  printf '  %-4s %-22s %s\n' "$1" "$2" "$3"
  if [[ "$1" != OK ]]; then FAILURES=$((FAILURES + 1)); fi
}

http_code() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { if [[ -f "$1" ]]; then cat "$1"; fi; }

# shellcheck source=local-data-tier.sh disable=SC1091
source "$SCRIPT_DIR/local-data-tier.sh"

# ---------------------------------------------------------------------------------------------

check_local() {
  local ha_dir=${HA_DIR:-$REPO_ROOT/.ha-local}
  if [[ "$ha_dir" != /* ]]; then ha_dir="$PWD/$ha_dir"; fi
  local state="$ha_dir/state.env"
  if [[ ! -f "$state" ]]; then
    report FAIL "deployment" "no local deployment in $ha_dir (deploy-ha.sh --platform local --replicas 3)"
    return 0
  fi
  local HA_REPLICAS HA_BIND HA_LB_PORT HA_BASE_PORT HA_REDIS_URL HA_OWN_REDIS HA_OWN_POSTGRES HA_PG_PORT HA_DATA=false
  # shellcheck disable=SC1090
  source "$state"
  local i url pid code lb_health lb_pid
  lb_health=$(curl -s -m 3 "http://$HA_BIND:$HA_LB_PORT/lb/health" 2>/dev/null || true)
  for ((i = 1; i <= HA_REPLICAS; i++)); do
    url="http://$HA_BIND:$((HA_BASE_PORT + i - 1))"
    pid=$(cat "$ha_dir/replica-$i.pid" 2>/dev/null || true)
    if ! pid_alive "$pid"; then
      report FAIL "replica $i" "$url: process not running (log $ha_dir/replica-$i.log)"
      continue
    fi
    code=$(http_code "$url/health/ready")
    if [[ "$code" != 200 ]]; then
      report FAIL "replica $i" "$url/health/ready answered ${code/000/no connection} (pid $pid)"
    elif [[ "$lb_health" != *"\"address\":\"$url/\",\"healthy\":true"* ]]; then
      report FAIL "replica $i" "$url ready, but the load balancer does not route to it yet (pid $pid)"
    else
      report OK "replica $i" "$url ready, in the load balancer (pid $pid)"
    fi
  done
  lb_pid=$(cat "$ha_dir/lb.pid" 2>/dev/null || true)
  url="http://$HA_BIND:$HA_LB_PORT"
  if ! pid_alive "$lb_pid"; then
    report FAIL "load balancer" "$url: process not running (log $ha_dir/lb.log)"
  else
    local healthy=${lb_health#*\"healthyDestinations\":}
    healthy=${healthy%%,*}
    code=$(http_code "$url/health")
    if [[ "$code" == 200 ]]; then
      report OK "load balancer" "$url: GET /health 200 via ${healthy:-?} healthy of $HA_REPLICAS replicas (pid $lb_pid)"
    else
      report FAIL "load balancer" "$url: GET /health answered ${code/000/no connection} (pid $lb_pid)"
    fi
  fi
  if [[ "$HA_DATA" == true ]]; then
    HA_DIR=$ha_dir
    data_settings
    data_report
  fi
  if [[ "${HA_OWN_REDIS:-false}" == true ]]; then
    if redis-cli -u "$HA_REDIS_URL" ping >/dev/null 2>&1; then report OK "redis" "$HA_REDIS_URL"; else report FAIL "redis" "$HA_REDIS_URL does not answer PING"; fi
  fi
  if [[ "${HA_OWN_POSTGRES:-false}" == true ]]; then
    if ! command -v pg_isready >/dev/null 2>&1; then
      report FAIL "postgresql" "pg_isready is not installed (apt-get install postgresql-client)"
    elif pg_isready -q -h 127.0.0.1 -p "$HA_PG_PORT" 2>/dev/null; then
      report OK "postgresql" "127.0.0.1:$HA_PG_PORT"
    else
      report FAIL "postgresql" "127.0.0.1:$HA_PG_PORT not accepting connections"
    fi
  fi
}

compose_cmd() {
  local file=${HA_COMPOSE_FILE:-$REPO_ROOT/deployment/docker-compose.ha.yml}
  if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -f "$file")
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose -f "$file")
  else
    die "neither 'docker compose' nor 'docker-compose' is available" "install the Docker Compose plugin or apt-get install docker-compose"
  fi
  docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable" "start Docker or set DOCKER_HOST"
}

check_compose() {
  local COMPOSE=() id name status count=0 lb_url=${HA_LB_URL:-http://localhost/}
  compose_cmd
  for id in $("${COMPOSE[@]}" ps -q web 2>/dev/null); do
    count=$((count + 1))
    name=$(docker inspect -f '{{.Name}}' "$id" 2>/dev/null || echo "$id")
    status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)
    if [[ "$status" == healthy ]]; then report OK "${name#/}" "healthy"; else report FAIL "${name#/}" "$status"; fi
  done
  (( count > 0 )) || report FAIL "web" "no web containers (deploy-ha.sh --platform docker-compose --replicas 3)"
  local code
  code=$(http_code "${lb_url%/}/health")
  if [[ "$code" == 200 ]]; then report OK "traefik" "${lb_url%/}/health 200"; else report FAIL "traefik" "${lb_url%/}/health answered ${code/000/no connection}"; fi
}

check_kubernetes() {
  command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed" "install kubectl"
  kubectl config current-context >/dev/null 2>&1 || die "kubectl has no current context" "set KUBECONFIG or kubectl config use-context <cluster>"
  local selector="app.kubernetes.io/name=jackcwf,app.kubernetes.io/component=api" line name ready phase desired available endpoints
  local pods
  pods=$(kubectl -n "$NAMESPACE" get pods -l "$selector" --request-timeout=10s \
    -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase} {range .status.conditions[?(@.type=="Ready")]}{.status}{end}{"\n"}{end}' 2>&1) \
    || { report FAIL "cluster" "kubectl get pods failed: $pods"; return 0; }
  while read -r line; do
    [[ -n "$line" ]] || continue
    read -r name phase ready <<<"$line"
    if [[ "$ready" == True ]]; then report OK "$name" "$phase, ready"; else report FAIL "$name" "$phase, not ready"; fi
  done <<<"$pods"
  [[ -n "$pods" ]] || report FAIL "pods" "no pods with $selector in namespace $NAMESPACE"
  desired=$(kubectl -n "$NAMESPACE" get deployment jackcwf-backend -o jsonpath='{.spec.replicas}' 2>/dev/null || echo "?")
  available=$(kubectl -n "$NAMESPACE" get deployment jackcwf-backend -o jsonpath='{.status.readyReplicas}' 2>/dev/null || echo 0)
  if [[ "${available:-0}" == "$desired" ]]; then report OK "deployment" "$available/$desired ready"; else report FAIL "deployment" "${available:-0}/$desired ready"; fi
  endpoints=$(kubectl -n "$NAMESPACE" get endpoints jackcwf-backend-service -o jsonpath='{.subsets[*].addresses[*].ip}' 2>/dev/null || true)
  if [[ -n "$endpoints" ]]; then report OK "service" "jackcwf-backend-service -> $endpoints"; else report FAIL "service" "jackcwf-backend-service has no ready endpoints"; fi
}

check_once() {
  FAILURES=0
  printf '%s health of the %s deployment\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$PLATFORM"
  case "$PLATFORM" in
    local) check_local ;;
    docker-compose) check_compose ;;
    kubernetes) check_kubernetes ;;
  esac
  if (( FAILURES == 0 )); then printf '  => healthy\n'; else printf '  => UNHEALTHY (%d problem(s))\n' "$FAILURES"; fi
  (( FAILURES == 0 ))
}

if [[ "$CONTINUOUS" == false ]]; then
  check_once
  exit $?
fi

LAST=0
trap 'exit $LAST' INT TERM
while true; do
  if check_once; then LAST=0; else LAST=1; fi
  sleep "$INTERVAL" &
  wait $! || true
done

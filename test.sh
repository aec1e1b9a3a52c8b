#!/usr/bin/env bash
# Runs every test of the repository on this machine, the same way CI does:
#   1. installs the Debian packages the tests need (tests/apt-packages.txt) when missing,
#   2. installs npm dependencies and builds the web app, builds the solution in Release,
#   3. starts a throwaway PostgreSQL and Redis on loopback (stopped again at exit),
#   4. runs each .NET test project and the web unit tests, then prints one line "N passed, N failed".
# Options (environment): JACKCWF_TEST_FILTER=<substring of test project names to run>,
#   JACKCWF_TEST_PG_PORT (default 11432), JACKCWF_TEST_REDIS_PORT (default 11379).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
RUN_DIR="$ROOT/.test-run"
PG_PORT=${JACKCWF_TEST_PG_PORT:-11432}
REDIS_PORT=${JACKCWF_TEST_REDIS_PORT:-11379}
FILTER=${JACKCWF_TEST_FILTER:-}
PER_SUITE_TIMEOUT=${JACKCWF_TEST_SUITE_TIMEOUT:-1200}

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (run ./test.sh as root, or install the packages listed in tests/apt-packages.txt)"
  fi
}

install_packages() {
  local missing=() pkg
  while read -r pkg; do
    pkg=${pkg%%#*}; pkg=${pkg//[[:space:]]/}
    [ -z "$pkg" ] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < tests/apt-packages.txt
  if [ ${#missing[@]} -eq 0 ]; then
    echo "all Debian packages present"
    return
  fi
  step "installing Debian packages: ${missing[*]}"
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get could not install ${missing[*]}; check the package mirror"
}

pg_bin() { local bins=(/usr/lib/postgresql/*/bin); echo "${bins[-1]}"; }

start_postgres() {
  local bin dir="$RUN_DIR/pg"
  bin=$(pg_bin)
  [ -x "$bin/initdb" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql (package postgresql)"
  stop_postgres
  rm -rf "$dir"; install -d -o postgres -g postgres "$dir"
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/pg.log" >&2; die "PostgreSQL did not start on 127.0.0.1:$PG_PORT (is the port taken?)"; }
  echo "PostgreSQL on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  local dir="$RUN_DIR/pg"
  if [ -f "$dir/data/postmaster.pid" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

start_redis() {
  stop_redis
  mkdir -p "$RUN_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --databases 256 --save '' --appendonly no --daemonize yes \
    --pidfile "$RUN_DIR/redis/redis.pid" --dir "$RUN_DIR/redis" --logfile "$RUN_DIR/redis/redis.log" \
    || die "Redis did not start on 127.0.0.1:$REDIS_PORT"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "Redis on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  if [ -f "$RUN_DIR/redis/redis.pid" ]; then
    kill "$(cat "$RUN_DIR/redis/redis.pid")" 2>/dev/null || true
    rm -f "$RUN_DIR/redis/redis.pid"
  fi
}

cleanup() { stop_redis; stop_postgres; }

# npm ci unless node_modules is already installed from the current lock file.
npm_ci_if_needed() {
  if [ -d "$1/node_modules" ] && [ "$1/node_modules/.package-lock.json" -nt "$1/package-lock.json" ]; then
    return
  fi
  (cd "$1" && npm ci --no-audit --no-fund) || die "npm ci failed in $1"
}

PASSED=0; FAILED=0; SUITES_BROKEN=()

# Adds the counts of one suite's output; a suite that printed no summary counts as one failure.
count_dotnet() {
  local name=$1 out=$2 rc=$3 total failed succeeded
  total=$(grep -E '^\s*total: [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+' || true)
  failed=$(grep -E '^\s*failed: [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+' || true)
  succeeded=$(grep -E '^\s*succeeded: [0-9]+' "$out" | tail -1 | grep -oE '[0-9]+' || true)
  if [ -z "$total" ] || [ -z "$succeeded" ]; then
    echo "   $name: no test summary (exit code $rc)"; FAILED=$((FAILED + 1)); SUITES_BROKEN+=("$name"); return
  fi
  failed=${failed:-0}
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; SUITES_BROKEN+=("$name"); fi
  [ "$total" -eq 0 ] && { echo "   $name: ran no test"; failed=$((failed + 1)); SUITES_BROKEN+=("$name"); }
  echo "   $name: $succeeded passed, $failed failed"
  PASSED=$((PASSED + succeeded)); FAILED=$((FAILED + failed))
}

count_vitest() {
  local out=$1 rc=$2 line p f
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^\s*Tests\s+' | tail -1 || true)
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
  if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then f=$((f + 1)); SUITES_BROKEN+=("web"); fi
  echo "   web (vitest): $p passed, $f failed"
  PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
}

step "checking tools"
command -v dotnet >/dev/null || die "the .NET 10 SDK is missing (https://dot.net); dotnet must be on PATH"
{ command -v node && command -v npm; } >/dev/null || die "Node.js 20+ and npm are missing; install them (e.g. apt-get install nodejs npm)"
install_packages

mkdir -p "$RUN_DIR/logs"
trap cleanup EXIT

step "building the web app"
npm_ci_if_needed web
(cd web && npm run build)

step "installing the test OpenID Connect provider (npm)"
npm_ci_if_needed tests/Jackcwf.OidcTests/oidc-server

step "building the solution (Release)"
dotnet build Jackcwf.slnx -c Release -nologo -v q -clp:ErrorsOnly || die "build failed"

step "starting PostgreSQL and Redis"
start_postgres
start_redis
export JACKCWF_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres"
export JACKCWF_TEST_REDIS="127.0.0.1:$REDIS_PORT"
export JACKCWF_API_DLL="$ROOT/src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll"

step "web unit tests"
set +e
(cd web && NO_COLOR=1 FORCE_COLOR=0 npm test) > "$RUN_DIR/logs/web.log" 2>&1
rc=$?
set -e
tail -n 15 "$RUN_DIR/logs/web.log"
count_vitest "$RUN_DIR/logs/web.log" "$rc"

for proj in tests/*/*.csproj; do
  grep -q '<IsTestProject>true</IsTestProject>' "$proj" || continue
  name=$(basename "$proj" .csproj)
  if [ -n "$FILTER" ] && [[ "$name" != *"$FILTER"* ]]; then continue; fi
  step "$name"
  start=$(date +%s)
  set +e
  timeout "$PER_SUITE_TIMEOUT" dotnet test --project "$proj" -c Release --no-build --no-progress > "$RUN_DIR/logs/$name.log" 2>&1
  rc=$?
  set -e
  grep -E '^(failed|\s+(Assert|Expected|Actual|at Jackcwf))' "$RUN_DIR/logs/$name.log" | head -n 60 || true
  [ "$rc" -eq 124 ] && echo "   $name timed out after ${PER_SUITE_TIMEOUT}s"
  count_dotnet "$name" "$RUN_DIR/logs/$name.log" "$rc"
  echo "   ($(( $(date +%s) - start ))s; full log: .test-run/logs/$name.log)"
done

if [ -z "$FILTER" ] || [[ "bench" == *"$FILTER"* ]]; then
  step "benchmark smoke run (bench/run.sh --quick: every target answers; figures are not judged)"
  start=$(date +%s)
  set +e
  timeout 900 bench/run.sh --quick --out "$RUN_DIR/bench" > "$RUN_DIR/logs/bench.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then echo "   bench: 1 passed, 0 failed"; PASSED=$((PASSED + 1))
  else tail -n 20 "$RUN_DIR/logs/bench.log"; echo "   bench: 0 passed, 1 failed"; FAILED=$((FAILED + 1)); SUITES_BROKEN+=("bench"); fi
  echo "   ($(( $(date +%s) - start ))s; full log: .test-run/logs/bench.log)"
fi

echo
[ ${#SUITES_BROKEN[@]} -gt 0 ] && echo "suites with errors: ${SUITES_BROKEN[*]} (see .test-run/logs/)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

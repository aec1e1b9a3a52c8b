#!/usr/bin/env bash
# Benchmarks of the service pipeline on this machine (not part of the test run).
# Starts the Release build on 127.0.0.1, then measures:
#   1. CPU per request of the authenticated API pipeline (API key auth, access cache, rate limits,
#      metrics, request log) with wrk on GET /v1/models, against GET /health/live as the floor;
#   2. time to first streamed token through POST /api/conversations/{id}/messages (demo model, no delay);
#   3. memory held per open SSE stream (200 streams kept open by a slow demo answer).
# Usage: bench/run.sh [seconds-per-wrk-run]   (needs wrk and python3; installs wrk with apt-get if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
PORT=${BENCH_PORT:-18900}
WORK=$(mktemp -d)
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null || die "install wrk (apt-get install wrk)"; }
command -v python3 >/dev/null || die "python3 is needed"
dll=src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll
[ -f "$dll" ] || { echo "building the service (Release)"; dotnet build src/Jackcwf.Api -c Release -nologo -v q -clp:ErrorsOnly; }

start_service() { # $1 = demo chunk delay in ms
  rm -rf "$WORK/data"
  (cd "$WORK" && ASPNETCORE_URLS="http://127.0.0.1:$PORT" DEMO_CHUNK_DELAY_MS="$1" LOG_FORMAT=json LOG_LEVEL=Warning \
    RATE_LIMIT_USER_PER_MINUTE=1000000 RATE_LIMIT_KEY_PER_MINUTE=1000000 MAX_CONCURRENT_GENERATIONS=1000 SHUTDOWN_DRAIN_DELAY_SECONDS=0 \
    exec dotnet "$ROOT/$dll" > "$WORK/service.log" 2>&1) &
  PID=$!
  for _ in $(seq 360); do curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.5; done
  curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null || die "the service did not become ready (log: $WORK/service.log)"
  SVC_PID=$(pgrep -f "$ROOT/$dll" -n)
}
stop_service() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
ROOT=$PWD
PID=
trap 'stop_service; rm -rf "$WORK"' EXIT

echo "phase 1: demo model without delay, 127.0.0.1:$PORT"
start_service 0
python3 bench/bench.py --base "http://127.0.0.1:$PORT" --pid "$SVC_PID" --duration "$DURATION" --phase speed
stop_service
echo
echo "phase 2: demo model answering one word per second (streams stay open)"
start_service 1000
python3 bench/bench.py --base "http://127.0.0.1:$PORT" --pid "$SVC_PID" --phase memory

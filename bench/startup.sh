#!/usr/bin/env bash
# Start to ready of one Jackcwf process on SQLite (or --database-url), nothing else started: the first start (empty
# database, every migration) and then restarts (schema current), each from spawning `dotnet
# Jackcwf.Api.dll` to the first 200 of /health/live (listener open) and of /health/ready, with the
# process's CPU seconds (utime + stime) at ready and its RSS 3 s later. CPU is the figure to compare
# on a shared machine: the wall-clock times grow with the load average printed beside them.
#   bench/startup.sh [--dll PATH] [--runs 5] [--database-url URL]
# --database-url runs it on that database instead (a PostgreSQL URL as DATABASE_URL takes it; give
# an empty database for the first start to apply every migration; DATA_PROTECTION_KEY, which
# PostgreSQL requires, is a throwaway one unless set).
# PATH defaults to bench/.publish/Jackcwf.Api.dll (what bench/run.sh publishes, as the Dockerfile
# does), else the Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
dll=""; runs=5; database_url=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dll) dll=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --database-url) database_url=$2; shift 2 ;;
    *) echo "usage: bench/startup.sh [--dll PATH] [--runs N] [--database-url URL]" >&2; exit 2 ;;
  esac
done
if [ -z "$dll" ]; then
  dll=bench/.publish/Jackcwf.Api.dll
  [ -f "$dll" ] || dll=src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll
fi
[ -f "$dll" ] || { echo "ERROR: $dll is missing (dotnet build -c Release, or bench/run.sh to publish)" >&2; exit 1; }
dll=$(realpath "$dll")
[ -z "$database_url" ] || export DATA_PROTECTION_KEY="${DATA_PROTECTION_KEY:-$(openssl rand -base64 32)}"
work=$(mktemp -d /tmp/jackcwf-startup-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tick=$(getconf CLK_TCK)
now() { date +%s.%N; }
code() { curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port$1" 2>/dev/null || true; }

echo "$dll on $([ -n "$database_url" ] && echo "$database_url" || echo SQLite); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 0 "$runs"); do
  t0=$(now)
  (cd "$work" && exec env DATABASE_URL="$database_url" ASPNETCORE_URLS="http://127.0.0.1:$port" LOG_LEVEL=Warning dotnet "$dll" >>"$work/out.log" 2>&1) &
  pid=$!
  live=""
  while :; do
    if [ -z "$live" ] && [ "$(code /health/live)" = 200 ]; then live=$(now); fi
    if [ "$(code /health/ready)" = 200 ]; then ready=$(now); break; fi
    kill -0 "$pid" 2>/dev/null || { echo "ERROR: the service exited:" >&2; tail -20 "$work/out.log" >&2; exit 1; }
    sleep 0.01
  done
  [ -n "$live" ] || live=$ready
  cpu=$(awk -v t="$tick" '{ split($0, a, ") "); split(a[2], f, " "); printf "%.2f", (f[12] + f[13]) / t }' "/proc/$pid/stat")
  sleep 3
  rss=$(awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  kind=$([ "$i" = 0 ] && echo "first start (migrations)" || echo "restart $i")
  printf '%-25s listening %5.2f s  ready %5.2f s  CPU to ready %5.2f s  RSS at rest %4s MiB  load %s\n' \
    "$kind" "$(echo "$live - $t0" | bc)" "$(echo "$ready - $t0" | bc)" "$cpu" "$rss" "$(cut -d' ' -f1 /proc/loadavg)"
done

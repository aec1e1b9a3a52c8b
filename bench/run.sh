#!/usr/bin/env bash
# Side-by-side benchmark of Jackcwf's /v1 gateway (API key, limits, ledger, metrics, PostgreSQL,
# Redis), a bare YARP hop and Portkey 1.15.2, all in front of one fake OpenAI upstream on loopback,
# driven in interleaved rounds with wrk and a small SSE probe. Not part of the test run, except
# `--quick`, which proves in a few seconds per target that every target answers.
#   bench/run.sh [--quick] [--rounds 3] [--seconds 10] [--streams 1000] [--out DIR]
#   bench/run.sh --replicas [--quick] [--rounds 3] [--seconds 10] [--out DIR]   # only one replica against 3
# Writes DIR/results.md (tables) and DIR/results.json (every run); DIR defaults to bench/. --replicas
# writes only DIR/replicas.json and prints its table.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }
for tool in wrk node npm python3 dotnet redis-server; do
  command -v "$tool" >/dev/null || die "$tool is missing: ./test.sh installs the packages listed in tests/apt-packages.txt (wrk, redis-server, postgresql), Node.js 20 and the .NET SDK"
done
[ -d /usr/lib/postgresql ] || die "PostgreSQL is missing (apt-get install postgresql)"

dll=src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll
if [ ! -f "$dll" ]; then step "building the service (Release)"; dotnet build src/Jackcwf.Api -c Release -nologo -v q -clp:ErrorsOnly; fi
without_portkey=false
[[ " $* " == *" --replicas "* ]] && without_portkey=true  # Portkey takes no part (the bare hop does: the control)
if [ ! -f bench/BareHop/bin/Release/net10.0/BareHop.dll ] || [ -n "$(find bench/BareHop -name '*.cs' -newer bench/BareHop/bin/Release/net10.0/BareHop.dll)" ]; then
  step "building the bare YARP hop (bench/BareHop)"
  dotnet build bench/BareHop -c Release -nologo -v q -clp:ErrorsOnly || die "bench/BareHop did not build"
fi
if ! $without_portkey && { [ ! -f bench/portkey/node_modules/.package-lock.json ] || [ bench/portkey/package-lock.json -nt bench/portkey/node_modules/.package-lock.json ]; }; then
  step "installing Portkey 1.15.2 from npm (bench/portkey)"
  (cd bench/portkey && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in bench/portkey"
fi
# Jackcwf runs as the container image runs it: published for this platform, so precompiled
# (ReadyToRun, Jackcwf.Api.csproj). --quick runs the Release build instead: publishing takes minutes.
if [[ " $* " != *" --quick "* ]]; then
  pub=bench/.publish
  if [ ! -f "$pub/Jackcwf.Api.dll" ] || [ -n "$(find src \( -name '*.cs' -o -name '*.csproj' -o -name '*.json' \) -newer "$pub/Jackcwf.Api.dll" -not -path '*/bin/*' -not -path '*/obj/*' | head -1)" ]; then
    step "publishing the service for this platform (ReadyToRun, as the Dockerfile does) into $pub"
    dotnet publish src/Jackcwf.Api -c Release --use-current-runtime --self-contained false -o "$pub" \
      -p:UseAppHost=false -p:SkipWebBuild=true -nologo -v q -clp:ErrorsOnly || die "the publish failed"
    touch "$pub/Jackcwf.Api.dll"
  fi
  export BENCH_JACKCWF_DLL="$PWD/$pub/Jackcwf.Api.dll"
fi
# Thousands of open streams need as many file descriptors in the driver and the targets: 65,536
# where the hard limit allows it, else the hard limit (said here: a proxy holds two per stream).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
step "open files: $(ulimit -n) per process (hard limit $(ulimit -Hn))"
step "running (results in ${OUT:-bench/})"
exec python3 bench/bench.py "$@"

#!/usr/bin/env bash
# Starts Jackcwf on http://localhost:8080 (or $PORT): SQLite in ./data and the built-in demo model,
# no keys needed. Builds the web app and the service first when they are missing or out of date.
set -euo pipefail
cd "$(dirname "$0")"
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
command -v dotnet >/dev/null || die "the .NET 10 SDK is missing (https://dot.net); dotnet must be on PATH"
command -v npm >/dev/null || die "Node.js 20+ and npm are missing; install them to build the web app"

index=src/Jackcwf.Api/wwwroot/index.html
if [ ! -f "$index" ] || [ -n "$(find web/src web/index.html web/package.json -newer "$index" -print -quit 2>/dev/null)" ]; then
  echo "==> building the web app (web/)"
  (cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build)
fi
echo "==> building the service"
dotnet build src/Jackcwf.Api -c Release -nologo -v q -clp:ErrorsOnly
echo "==> starting on http://localhost:${PORT:-8080} (Ctrl+C to stop; data in ./data)"
exec dotnet src/Jackcwf.Api/bin/Release/net10.0/Jackcwf.Api.dll "$@"

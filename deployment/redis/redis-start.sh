#!/bin/sh
# Starts one Redis of the Sentinel group (docker-compose.ha.yml services redis-1..3, and the
# redis container of the Kubernetes StatefulSet in kubernetes/components/redis-sentinel, which gets
# a GENERATED copy of this file from kubernetes/generate.sh).
# The password comes from the Docker secret /run/secrets/redis_password; it is written to a
# config file on the container's tmpfs (mode 600) so it never shows in `ps` or `docker inspect`.
# Whom to replicate: the master the sentinels name, when any of them answers; otherwise (first
# start of the whole group) REDIS_INITIAL_MASTER. A restarted old master therefore rejoins as a
# replica instead of starting a second master.
set -eu
secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
[ -s "$secret" ] || { echo "redis-start: $secret is missing or empty; create secrets/redis_password.txt (openssl rand -hex 32)" >&2; exit 1; }
password=$(cat "$secret")
self=${REDIS_ANNOUNCE_HOST:?set REDIS_ANNOUNCE_HOST to this service name}
initial=${REDIS_INITIAL_MASTER:?set REDIS_INITIAL_MASTER to the first master service name}

master=""
for sentinel in ${REDIS_SENTINELS:-}; do
  [ "$sentinel" = "$self" ] && continue
  answer=$(REDISCLI_AUTH="$password" redis-cli -h "$sentinel" -p 26379 --raw sentinel get-master-addr-by-name mymaster 2>/dev/null | head -n 1 || true)
  if [ -n "$answer" ]; then master=$answer; break; fi
done
[ -n "$master" ] || master=$initial

umask 077
{
  echo "requirepass $password"
  echo "masterauth $password"
  echo "replica-announce-ip $self"
  if [ "$master" != "$self" ]; then echo "replicaof $master 6379"; fi
} >/data/redis.conf
echo "redis-start: $self starts as $([ "$master" = "$self" ] && echo master || echo "replica of $master")"
# Transient signals only: no persistence; noeviction so stream entries are never dropped silently.
# REDIS_MAXMEMORY (default 256mb): size it from docs/deployment/capacity.md ("Redis memory"): about 40 KB per
# concurrent chat stream, 234 bytes per /v1 request a second; keep the container's memory limit a quarter above it.
maxmemory=${REDIS_MAXMEMORY:-256mb}
echo "redis-start: maxmemory $maxmemory (noeviction)"
exec redis-server /data/redis.conf --save "" --appendonly no --maxmemory "$maxmemory" --maxmemory-policy noeviction

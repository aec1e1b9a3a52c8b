#!/bin/sh
# Starts one Redis Sentinel (docker-compose.ha.yml services sentinel-1..3, and the sentinel
# container of kubernetes/components/redis-sentinel, a GENERATED copy). Sentinel rewrites its
# configuration file, so it is generated on the container's tmpfs at every start. It monitors the
# master the other sentinels name (REDIS_SENTINELS), or REDIS_INITIAL_MASTER when none answers. The same
# password protects the sentinels (requirepass) and the monitored Redis (auth-pass), so clients
# use one password for both (StackExchange.Redis sends it to the sentinels too).
set -eu
secret=${REDIS_PASSWORD_FILE:-/run/secrets/redis_password}
[ -s "$secret" ] || { echo "sentinel-start: $secret is missing or empty; create secrets/redis_password.txt (openssl rand -hex 32)" >&2; exit 1; }
password=$(cat "$secret")
self=${SENTINEL_ANNOUNCE_HOST:?set SENTINEL_ANNOUNCE_HOST to this service name}
initial=${REDIS_INITIAL_MASTER:?set REDIS_INITIAL_MASTER to the first master service name}
master=""
for sentinel in ${REDIS_SENTINELS:-}; do
  [ "$sentinel" = "$self" ] && continue
  answer=$(REDISCLI_AUTH="$password" redis-cli -h "$sentinel" -p 26379 --raw sentinel get-master-addr-by-name mymaster 2>/dev/null | head -n 1 || true)
  if [ -n "$answer" ]; then master=$answer; break; fi
done
[ -n "$master" ] || master=$initial

umask 077
cat >/data/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
requirepass $password
sentinel sentinel-pass $password
sentinel monitor mymaster $master 6379 2
sentinel auth-pass mymaster $password
sentinel down-after-milliseconds mymaster 5000
sentinel failover-timeout mymaster 30000
sentinel parallel-syncs mymaster 1
CONF
exec redis-sentinel /data/sentinel.conf

#!/bin/sh
# Scheduled logical backups of the Compose PostgreSQL (service postgres-backup): every
# BACKUP_INTERVAL_HOURS a pg_dump in custom format (restorable with pg_restore, table by table if
# needed) into /backups, keeping the newest BACKUP_KEEP. Each dump is written to a temporary name
# and renamed only when pg_dump succeeded, so a half-written file is never mistaken for a backup.
# Restore steps: docs/deployment/DEPLOYMENT_RECOVERY_GUIDE.md ("Compose: restore a backup").
set -eu
interval_hours=${BACKUP_INTERVAL_HOURS:-24}
keep=${BACKUP_KEEP:-7}
secret=/run/secrets/postgres_password
[ -s "$secret" ] || { echo "backup: $secret is missing; create secrets/postgres_password.txt" >&2; exit 1; }
case "$interval_hours" in ''|*[!0-9]*) echo "backup: BACKUP_INTERVAL_HOURS must be a whole number of hours, got '$interval_hours'" >&2; exit 1 ;; esac
case "$keep" in ''|*[!0-9]*|0) echo "backup: BACKUP_KEEP must be a number >= 1, got '$keep'" >&2; exit 1 ;; esac
PGPASSWORD=$(cat "$secret")
PGHOST="${PGHOST:-postgres}" PGUSER="${PGUSER:-jackcwf}" PGDATABASE="${PGDATABASE:-jackcwf}"
export PGPASSWORD PGHOST PGUSER PGDATABASE

backup_once() {
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  target=/backups/jackcwf-$stamp.dump
  if pg_dump --format=custom --no-owner --file="$target.partial"; then
    mv "$target.partial" "$target"
    echo "backup: wrote $target ($(wc -c <"$target") bytes)"
    # The names sort by time (UTC stamp); delete all but the newest $keep.
    find /backups -maxdepth 1 -name 'jackcwf-*.dump' | sort -r | tail -n +"$((keep + 1))" | while read -r old; do
      rm -f "$old" && echo "backup: removed $old (BACKUP_KEEP=$keep)"
    done
  else
    rm -f "$target.partial"
    echo "backup: pg_dump failed; the previous backups are kept" >&2
  fi
}

until pg_isready -q; do echo "backup: waiting for PostgreSQL at $PGHOST"; sleep 5; done
while true; do
  backup_once
  sleep "$((interval_hours * 3600))"
done

#!/usr/bin/env bash
# FLARE container entrypoint: one image, one role per container.
#
#   web              daphne on 0.0.0.0:${FLARE_PORT:-8000} (HTTP and websockets)
#   worker           celery worker on queue ${FLARE_CELERY_QUEUE:-flare}, ${FLARE_WORKERS:-2} processes
#   beat             celery beat; exactly ONE per installation (every beat publishes the schedule)
#   migrate          migrate_schemas --shared, then migrate_schemas (idempotent; one run at a time)
#   wait-migrations  block until no migration is pending (init container of web/worker/beat)
#   seed             seed_federation: the demo federation (simulated backend only)
#   manage           any manage.py command: `manage create_tenant ...`, `manage demo_setup`
#   healthcheck      the role-aware container health check (deploy/healthcheck.py)
#
# Extra arguments after the role are passed on, e.g. `worker --concurrency 8`.
# Anything else runs as given (`sh`, `python -c ...`).
set -euo pipefail

APP_DIR=${FLARE_APP_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$APP_DIR"
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-flare_portal.settings}
PYTHON=${FLARE_PYTHON:-python}

say() { printf 'flare-entrypoint: %s\n' "$*" >&2; }
die() { printf 'flare-entrypoint: error: %s\n' "$*" >&2; exit 1; }

is_true() {
  case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes|on) return 0 ;;
    *) return 1 ;;
  esac
}

# Long-running roles refuse to start in production without a real secret key: sessions, CSRF
# tokens and signed values of every process must use the same, secret value.
require_secret_key() {
  if is_true "${FLARE_DEBUG:-false}"; then
    return 0
  fi
  local key=${FLARE_SECRET_KEY:-}
  local lowered
  lowered=$(printf '%s' "$key" | tr '[:upper:]' '[:lower:]')
  if [ -z "$key" ]; then
    die "FLARE_SECRET_KEY is not set (set it in the flare-secrets Secret or flare.env; see deploy/README.md)"
  fi
  case "$lowered" in
    *change-me*|*changeme*|dev-only*)
      die "FLARE_SECRET_KEY is still a placeholder; generate one: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'" ;;
  esac
  if [ "${#key}" -lt 50 ]; then
    die "FLARE_SECRET_KEY has ${#key} characters; use at least 50 (Django's deployment check)"
  fi
}

wait_migrations() {
  local limit=${FLARE_MIGRATION_WAIT_SECONDS:-600}
  local deadline=$(( $(date +%s) + limit ))
  local output
  while ! output=$("$PYTHON" manage.py migrate_schemas --check --noinput -v 0 2>&1); do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      printf '%s\n' "$output" | tail -n 5 >&2
      die "migrations still pending after ${limit}s: run the migrate role (Kubernetes: job/flare-migrate)"
    fi
    say "waiting for migrations (last check: $(printf '%s' "${output:-pending}" | tail -n 1))"
    sleep "${FLARE_MIGRATION_WAIT_INTERVAL:-5}"
  done
  say "database schema is up to date"
}

role=${1:-web}
if [ "$#" -gt 0 ]; then
  shift
fi

case "$role" in
  web)
    require_secret_key
    exec daphne -b 0.0.0.0 -p "${FLARE_PORT:-8000}" "$@" flare_portal.asgi:application
    ;;
  worker)
    require_secret_key
    exec celery -A flare_portal worker -l "${FLARE_LOG_LEVEL:-INFO}" \
      -Q "${FLARE_CELERY_QUEUE:-flare}" --concurrency "${FLARE_WORKERS:-2}" "$@"
    ;;
  beat)
    require_secret_key
    # The schedule file lives on a writable path (/tmp is an emptyDir on Kubernetes).
    exec celery -A flare_portal beat -l "${FLARE_LOG_LEVEL:-INFO}" \
      --schedule "${FLARE_BEAT_SCHEDULE:-/tmp/celerybeat-schedule}" "$@"
    ;;
  migrate)
    exec "$PYTHON" deploy/migrate.py "$@"
    ;;
  wait-migrations)
    wait_migrations
    ;;
  seed)
    exec "$PYTHON" manage.py seed_federation --no-progress "$@"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  healthcheck)
    exec "$PYTHON" deploy/healthcheck.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac

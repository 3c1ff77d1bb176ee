"""Apply FLARE's migrations: the public schema, then every tenant schema (the `migrate` role).

    python deploy/migrate.py            # what `entrypoint.sh migrate` runs

Steps, each idempotent, so the role can run on every deploy:
1. wait until PostgreSQL accepts connections (FLARE_DB_WAIT_SECONDS, default 120);
2. take a PostgreSQL advisory lock, so two runs never migrate at once (a Job retried while
   its first pod still runs, a compose one-shot next to a manual run); the second run waits
   for the first, then finds nothing left to do;
3. `manage.py migrate_schemas --shared`, then `manage.py migrate_schemas` (the public schema
   first: tenant schemas are listed from the public `tenants_tenant` table);
4. release the lock (closing the connection releases it too, also when a step fails).

Connection settings come from Django's settings (the FLARE_DB_* variables), so this script
and the application always talk to the same database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
# "FLARE" in ASCII: the advisory lock key shared by every migrate run against one database.
LOCK_KEY = 0x464C415245
STEPS = (
    ["migrate_schemas", "--shared", "--noinput"],
    ["migrate_schemas", "--noinput"],
)


def log(message: str) -> None:
    print(f"flare-migrate: {message}", file=sys.stderr, flush=True)


def database_parameters() -> dict:
    sys.path.insert(0, str(APP_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flare_portal.settings")
    from django.conf import settings  # settings only: no app loading, no database access

    database = settings.DATABASES["default"]
    return {
        "host": database["HOST"] or None,
        "port": int(database["PORT"]) if database["PORT"] else None,
        "user": database["USER"] or None,
        "password": database["PASSWORD"] or None,
        "dbname": database["NAME"],
    }


def connect(parameters: dict, wait_seconds: float):
    import psycopg

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return psycopg.connect(autocommit=True, connect_timeout=5, **parameters)
        except psycopg.OperationalError as error:
            if time.monotonic() >= deadline:
                raise SystemExit(f"flare-migrate: PostgreSQL is not reachable: {error}") from error
            reason = (str(error).strip().splitlines() or [error.__class__.__name__])[-1]
            log(f"waiting for PostgreSQL at {parameters['host']}:{parameters['port']} ({reason})")
            time.sleep(2)


def main() -> int:
    parameters = database_parameters()
    with connect(parameters, float(os.environ.get("FLARE_DB_WAIT_SECONDS", "120"))) as lock:
        acquired = lock.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]
        if not acquired:
            log("another migration run holds the lock; waiting for it to finish")
            lock.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            for step in STEPS:
                command = [sys.executable, str(APP_DIR / "manage.py"), *step, *sys.argv[1:]]
                log("running " + " ".join(["manage.py", *step, *sys.argv[1:]]))
                result = subprocess.run(command, cwd=APP_DIR, check=False)
                if result.returncode != 0:
                    log(f"{' '.join(step)} failed with exit code {result.returncode}")
                    return result.returncode
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    log("all schemas are migrated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

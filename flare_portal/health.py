"""Plain health endpoints: `/healthz` (the process answers) and `/readyz` (database and Redis)."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return None
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return str(error).splitlines()[0] if str(error) else error.__class__.__name__


def _check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return None
    except Exception as error:  # noqa: BLE001
        return str(error) or error.__class__.__name__


def readyz(request):
    checks = {}
    ready = True
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        started = time.perf_counter()
        error = check()
        checks[name] = {"ok": error is None, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        if error:
            checks[name]["error"] = error
            ready = False
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)

"""Role-aware container health check (the image's HEALTHCHECK, compose healthchecks, probes).

    python deploy/healthcheck.py [web|worker|beat] [--liveness]

Without a role, the role is found from the container's processes (/proc/*/cmdline): daphne is
`web`, `celery ... worker` is `worker`, `celery ... beat` is `beat`. A container running a one-shot
role (migrate, seed, manage) has none of them and is reported healthy: its exit code is its health.

- web: GET http://127.0.0.1:${FLARE_PORT:-8000}/healthz must answer 200. The request carries
  `Host: localhost`, so `localhost` must stay in FLARE_ALLOWED_HOSTS.
- worker: the local worker (celery@<hostname>) must answer a control ping through the broker.
- beat: the broker must accept a connection (beat only publishes; without a broker it does nothing).

`--liveness` (Kubernetes livenessProbe) answers the question "would a restart help?": a broker
that cannot be reached is then reported healthy with a warning, because restarting every worker
does not bring Redis back. Only a worker that the broker reaches but that does not answer is dead.
Exit code 0 = healthy, 1 = unhealthy; one line on stdout says why.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
TIMEOUT = float(os.environ.get("FLARE_HEALTHCHECK_TIMEOUT", "5"))


def detect_role() -> str | None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = [part for part in cmdline.read_bytes().decode(errors="replace").split("\0") if part]
        except OSError:
            continue
        names = [os.path.basename(part) for part in argv]
        if "daphne" in names:
            return "web"
        if "celery" in names:
            if "worker" in argv:
                return "worker"
            if "beat" in argv:
                return "beat"
    return None


def check_web() -> tuple[bool, str]:
    url = f"http://127.0.0.1:{os.environ.get('FLARE_PORT', '8000')}/healthz"
    request = urllib.request.Request(url, headers={"Host": "localhost"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status == 200, f"{url} answered {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"{url} answered {error.code}"
    except OSError as error:
        return False, f"{url} unreachable: {error}"


def _celery_app():
    sys.path.insert(0, str(APP_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flare_portal.settings")
    from flare_portal.celery import app

    return app


def _broker_error(app) -> str | None:
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=TIMEOUT)
        return None
    except Exception as error:  # noqa: BLE001 - any failure means the broker is unreachable
        return f"{error.__class__.__name__}: {error}"


def check_worker(liveness: bool) -> tuple[bool, str]:
    app = _celery_app()
    broker_error = _broker_error(app)
    if broker_error:
        return liveness, f"broker unreachable ({broker_error})"
    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=TIMEOUT)
    if any(node in reply for reply in replies or ()):
        return True, f"{node} answered the ping"
    return False, f"{node} did not answer a ping within {TIMEOUT:g}s"


def check_beat(liveness: bool) -> tuple[bool, str]:
    broker_error = _broker_error(_celery_app())
    if broker_error:
        return liveness, f"broker unreachable ({broker_error})"
    return True, "broker reachable"


def main(argv: list[str]) -> int:
    liveness = "--liveness" in argv
    roles = [arg for arg in argv if not arg.startswith("--")]
    role = roles[0] if roles else (os.environ.get("FLARE_HEALTHCHECK_ROLE") or detect_role())
    if role is None:
        print("no web, worker or beat process: a one-shot role; its exit code is its health")
        return 0
    if role == "web":
        healthy, reason = check_web()
    elif role == "worker":
        healthy, reason = check_worker(liveness)
    elif role == "beat":
        healthy, reason = check_beat(liveness)
    else:
        print(f"unknown role {role!r}: use web, worker or beat")
        return 1
    print(f"{role}: {'healthy' if healthy else 'UNHEALTHY'}: {reason}")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

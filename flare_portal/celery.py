"""The Celery app: Redis broker, settings from Django, beat schedule for re-driving intents."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flare_portal.settings")

app = Celery("flare")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "refresh-inventory": {
        "task": "intents.refresh_inventory",
        "schedule": float(os.environ.get("FLARE_INVENTORY_REFRESH_SECONDS", "60")),
        "options": {"expires": float(os.environ.get("FLARE_INVENTORY_REFRESH_SECONDS", "60"))},
    },
    "redrive-intents": {
        "task": "intents.redrive_intents",
        "schedule": float(os.environ.get("FLARE_REDRIVE_SECONDS", "15")),
        "options": {"expires": float(os.environ.get("FLARE_REDRIVE_SECONDS", "15"))},
    },
}

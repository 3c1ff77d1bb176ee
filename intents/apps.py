from django.apps import AppConfig


class IntentsConfig(AppConfig):
    name = "intents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Registers the `intents.deliver_webhook` task (Celery autodiscovery only imports
        # intents.tasks) and subscribes webhook fan-out to every published intent event.
        from . import webhooks

        webhooks.register()

from django.apps import AppConfig


class IntentsConfig(AppConfig):
    name = "intents"
    default_auto_field = "django.db.models.BigAutoField"

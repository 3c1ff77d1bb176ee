"""Websocket routes of the intents app (included by flare_portal.routing)."""

from channels.auth import AuthMiddleware
from django.urls import re_path

from .consumers import IntentEventConsumer

# asgi.py already wraps websockets in SessionMiddlewareStack; AuthMiddleware adds scope["user"]
# from that session. Token clients are authenticated by the consumer itself.
websocket_urlpatterns = [
    re_path(r"^ws/intents/?$", AuthMiddleware(IntentEventConsumer.as_asgi()), name="ws-intents"),
]

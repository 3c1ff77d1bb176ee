"""Websocket routes: the intents consumer (`/ws/intents/`, session or token auth)."""

from intents.routing import websocket_urlpatterns as intent_routes

websocket_urlpatterns: list = [*intent_routes]

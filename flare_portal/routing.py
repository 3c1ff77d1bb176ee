"""Websocket routes. The intents consumer joins them when the portal issue lands."""

websocket_urlpatterns: list = []

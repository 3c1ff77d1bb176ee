"""ASGI entry point: HTTP through Django, websockets through Channels (session or token auth)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flare_portal.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402

from flare_portal.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # No origin validator here: API clients connect with a token and send no Origin header.
        # The consumer checks the origin itself for cookie (session) connections.
        "websocket": SessionMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)

"""Settings for the ASGI server the browser test starts: the project's, plus a channel layer with a
per-run prefix, so concurrent test runs on the same Redis never hear each other's events."""

import os

from flare_portal.settings import *  # noqa: F401,F403
from flare_portal.settings import env_str


def channel_layers(prefix: str) -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [env_str("FLARE_CHANNELS_URL", "redis://127.0.0.1:6379/3")], "prefix": prefix},
        }
    }


CHANNEL_LAYERS = channel_layers(os.environ.get("FLARE_E2E_CHANNELS_PREFIX", "asgi"))

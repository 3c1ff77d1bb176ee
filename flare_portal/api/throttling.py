from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Per token (or per client address when anonymous)."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        ident = token.token_id if token is not None and hasattr(token, "token_id") else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

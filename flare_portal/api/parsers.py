from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import JSONParser

from .errors import FlareAPIException


class LimitedJSONParser(JSONParser):
    """JSON with a body-size limit that also holds for chunked bodies (no Content-Length)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise FlareAPIException(413, "PAYLOAD_TOO_LARGE",
                                    f"The request body is larger than {limit} bytes.")
        import io

        return super().parse(io.BytesIO(raw), media_type, parser_context)

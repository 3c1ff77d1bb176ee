"""Request ids: one per request, echoed in `X-Request-ID`, carried by every log line."""

from __future__ import annotations

import contextvars
import logging
import re
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("flare_request_id", default="-")
_schema: contextvars.ContextVar[str] = contextvars.ContextVar("flare_schema", default="-")

# A client may pass its own id for correlation; anything odd is replaced, never trusted blindly.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return _request_id.get()


def set_log_schema(schema: str) -> None:
    _schema.set(schema)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _CLIENT_ID.match(incoming) else f"req_{uuid.uuid4().hex[:16]}"
        request.request_id = request_id
        token = _request_id.set(request_id)
        schema_token = _schema.set("public")
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
            _schema.reset(schema_token)
        response["X-Request-ID"] = request_id
        return response


class RequestContextLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        record.schema = _schema.get()
        return True

"""One error envelope for every error the API can produce (API.md "Errors").

`{"status", "error_code", "message", "suggestions": [...], "details": [{"field", "message"}]}`
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from flare_portal.middleware import current_request_id

logger = logging.getLogger("flare.api")


class FlareAPIException(exceptions.APIException):
    """An error with its API code; views and services raise it to answer precisely."""

    def __init__(self, status_code: int, error_code: str, message: str, *, details=None, suggestions=None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.message = message
        self.details = details or []
        self.suggestions = suggestions or []
        self.headers = headers or {}
        self.extra = extra or {}


def envelope(status_code: int, error_code: str, message: str, *, details=None, suggestions=None, extra=None) -> dict:
    body = {
        "status": status_code,
        "error_code": error_code,
        "message": message,
        "suggestions": suggestions or [],
        "details": details or [],
        "request_id": current_request_id(),
    }
    if extra:
        body.update(extra)
    return body


def flatten_validation(detail, path: str = "") -> list[dict]:
    """DRF's nested error structure → [{"field": "a.b[0].c", "message", "code"}]."""
    items: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            elif path:
                sub = f"{path}.{key}"
            else:
                sub = str(key)
            items.extend(flatten_validation(value, sub))
    elif isinstance(detail, list):
        if all(isinstance(v, (str, exceptions.ErrorDetail)) for v in detail):
            for value in detail:
                items.append({"field": path or None, "message": str(value), "code": getattr(value, "code", "invalid")})
        else:
            for index, value in enumerate(detail):
                items.extend(flatten_validation(value, f"{path}[{index}]"))
    else:
        items.append({"field": path or None, "message": str(detail), "code": getattr(detail, "code", "invalid")})
    return items


def _validation_response(exc: exceptions.ValidationError) -> tuple[int, dict]:
    items = flatten_validation(exc.detail)
    missing = [i for i in items if i["code"] == "required"]
    code = "MISSING_REQUIRED_FIELD" if items and len(missing) == len(items) else "INVALID_FORMAT"
    if code == "MISSING_REQUIRED_FIELD":
        message = "Missing required field(s): " + ", ".join(i["field"] or "?" for i in missing) + "."
    elif len(items) == 1:
        field = items[0]["field"]
        message = f"{field}: {items[0]['message']}" if field else items[0]["message"]
    else:
        message = f"The request has {len(items)} problems; see details."
    details = [{"field": i["field"], "message": i["message"]} for i in items]
    return 400, envelope(400, code, message, details=details)


_SIMPLE = {
    exceptions.ParseError: (400, "INVALID_FORMAT"),
    exceptions.NotAuthenticated: (401, "AUTHENTICATION_FAILED"),
    exceptions.AuthenticationFailed: (401, "AUTHENTICATION_FAILED"),
    exceptions.PermissionDenied: (403, "INSUFFICIENT_PERMISSIONS"),
    exceptions.NotFound: (404, "NOT_FOUND"),
    exceptions.MethodNotAllowed: (405, "METHOD_NOT_ALLOWED"),
    exceptions.NotAcceptable: (406, "NOT_ACCEPTABLE"),
    exceptions.UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE"),
    exceptions.Throttled: (429, "RATE_LIMITED"),
}


def exception_handler(exc, context):
    headers: dict = {}
    if isinstance(exc, FlareAPIException):
        body = envelope(exc.status_code, exc.error_code, exc.message, details=exc.details,
                        suggestions=exc.suggestions, extra=exc.extra)
        response = Response(body, status=exc.status_code, headers=exc.headers)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = 'Bearer realm="flare"'
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(envelope(413, "PAYLOAD_TOO_LARGE", "The request body is larger than the server accepts."),
                        status=413)
    elif isinstance(exc, SuspiciousOperation):
        return Response(envelope(400, "INVALID_FORMAT", "The request was refused as malformed."), status=400)
    if isinstance(exc, exceptions.ValidationError):
        code, body = _validation_response(exc)
        return Response(body, status=code)
    for klass, (code, error_code) in _SIMPLE.items():
        if isinstance(exc, klass):
            message = str(exc.detail)
            if isinstance(exc, exceptions.ParseError):
                message = f"The request body is not valid JSON: {exc.detail}"
            if isinstance(exc, exceptions.NotAuthenticated):
                message = "Authentication required: send 'Authorization: Bearer <token>'."
            if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
                headers["Retry-After"] = str(int(exc.wait) + 1)
            response = Response(envelope(code, error_code, message), status=code, headers=headers)
            if code == 401:
                response["WWW-Authenticate"] = 'Bearer realm="flare"'
            return response
    if isinstance(exc, exceptions.APIException):
        return Response(envelope(exc.status_code, "ERROR", str(exc.detail)), status=exc.status_code)
    logger.exception("Unhandled error in %s", context.get("view").__class__.__name__ if context else "?")
    return Response(
        envelope(500, "INTERNAL_ERROR", "An unexpected error occurred; it has been logged with this request id."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def json_error(request, status_code: int, error_code: str, message: str) -> JsonResponse:
    return JsonResponse(envelope(status_code, error_code, message), status=status_code)


def handler404(request, exception=None):
    if _is_api(request):
        return json_error(request, 404, "NOT_FOUND", f"No API endpoint at {request.path}.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return json_error(request, 500, "INTERNAL_ERROR",
                          "An unexpected error occurred; it has been logged with this request id.")
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    if _is_api(request):
        return json_error(request, 400, "INVALID_FORMAT", "The request was refused as malformed.")
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return json_error(request, 403, "INSUFFICIENT_PERMISSIONS", "Forbidden.")
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)

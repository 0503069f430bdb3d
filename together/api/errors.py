"""The one place that renders API errors into the published envelope."""
from __future__ import annotations

import logging
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions as drf

from together import exceptions as exc
from together.exceptions import ERROR_CODES

log = logging.getLogger("together.api")


# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5
# SQLSTATE classes of "the database is not there right now": 08 connection
# exception, 57P01-57P05 (admin/crash shutdown, cannot connect now, ...), 53
# insufficient resources (too many connections). Not 57014 (statement timeout).
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53")


def database_unavailable(exception: BaseException) -> bool:
    """True when `exception` is PostgreSQL being down or restarting, not a bug.

    A failure without an SQLSTATE is the connection itself (refused, reset,
    closed by a restart); one with an SQLSTATE counts only in the classes above,
    so a syntax error, a constraint or a timeout stays a 500.
    """
    if not isinstance(exception, (DatabaseOperationalError, DatabaseInterfaceError)):
        return False
    sqlstate = getattr(exception.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def database_unavailable_response(request, exception: BaseException) -> HttpResponse:
    log.warning("Database unavailable on %s %s: %s", request.method, request.path, str(exception).strip()[:200])
    return error_response(
        request, "service_unavailable", "The database is temporarily unavailable. Retry after a short wait.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def doc_url(code: str) -> str:
    return f"{settings.SITE_URL}/developer/api/errors/{code}"


def error_body(request, code: str, message: str, param: str | None = None, extra: dict[str, Any] | None = None) -> dict:
    error: dict[str, Any] = {
        "type": doc_url(code),
        "code": code,
        "message": message,
    }
    if param is not None:
        error["param"] = param
    if extra:
        error.update(extra)
    error["request_id"] = getattr(request, "request_id", None)
    error["doc_url"] = doc_url(code)
    return {"error": error}


def error_response(request, code: str, message: str, *, param: str | None = None, extra: dict | None = None, headers: dict | None = None) -> HttpResponse:
    status = ERROR_CODES[code][0]
    response = HttpResponse(
        orjson.dumps(error_body(request, code, message, param, extra)),
        status=status,
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _first_error(detail, prefix: str = "") -> tuple[str | None, str, str]:
    """Walk DRF's nested error detail to the first leaf: (param, message, drf code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key in ("non_field_errors", "__all__"):
                name = prefix or None
            return _first_error(value, name or "")
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                if isinstance(value, dict) and not value:
                    continue
                name = f"{prefix}[{index}]" if prefix else f"[{index}]"
                return _first_error(value, name)
            return _first_error(value, prefix)
        return (prefix or None, "Invalid value.", "invalid")
    code = getattr(detail, "code", "invalid")
    return (prefix or None, str(detail), code)


# DRF field error codes that mean "malformed" rather than "not allowed".
MALFORMED_CODES = {"required", "null", "not_a_list", "not_a_dict", "empty", "parse_error", "invalid_type"}


def exception_handler(exception, context):
    request = context.get("request")
    if isinstance(exception, exc.ApplicationError):
        headers = {}
        extra = dict(exception.extra)
        if isinstance(exception, exc.RateLimited):
            headers["Retry-After"] = str(exception.retry_after)
        if isinstance(exception, exc.MethodNotAllowed):
            headers["Allow"] = ", ".join(exception.allowed)
        if isinstance(exception, exc.Unauthorized):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return error_response(request, exception.code, exception.message, param=exception.param, extra=extra or None, headers=headers)
    if isinstance(exception, drf.ValidationError):
        param, message, code = _first_error(exception.detail)
        api_code = "invalid_request" if code in MALFORMED_CODES or code.startswith("wrong_type") else "validation_failed"
        if param and message.startswith("This field"):
            message = f"{param}: {message}"
        return error_response(request, api_code, message, param=param)
    if isinstance(exception, drf.ParseError):
        return error_response(request, "invalid_request", f"The body is not valid JSON: {exception.detail}")
    if isinstance(exception, drf.UnsupportedMediaType):
        return error_response(request, "invalid_request", "POST and PATCH bodies must be sent with Content-Type: application/json.", param="Content-Type")
    if isinstance(exception, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return error_response(request, "unauthorized", str(exception.detail), headers={"WWW-Authenticate": 'Bearer realm="api"'})
    if isinstance(exception, (drf.PermissionDenied, PermissionDenied)):
        return error_response(request, "forbidden", str(getattr(exception, "detail", "")) or exc.Forbidden.default_message)
    if isinstance(exception, (drf.NotFound, Http404)):
        return error_response(request, "not_found", "Not found.")
    if isinstance(exception, drf.MethodNotAllowed):
        view = context.get("view")
        allowed = view.allowed_methods if view else []
        return error_response(
            request, "method_not_allowed", f"Method {request.method} is not allowed here.", headers={"Allow": ", ".join(allowed)}
        )
    if isinstance(exception, drf.Throttled):
        return error_response(request, "rate_limited", "Rate limit exceeded.", headers={"Retry-After": str(int(exception.wait or 1))})
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, "invalid_request", "The request body is larger than 1 MB.")
    if isinstance(exception, drf.NotAcceptable):
        return error_response(request, "invalid_request", "Only application/json responses are available.", param="Accept")
    if isinstance(exception, drf.APIException) and exception.status_code < 500:
        return error_response(request, "invalid_request", str(exception.detail))
    if database_unavailable(exception):
        return database_unavailable_response(request, exception)
    log.exception("Unhandled API error", exc_info=exception)
    return error_response(request, "internal_error", "An internal error occurred. Nothing was half-stored; quote the request_id to support.")

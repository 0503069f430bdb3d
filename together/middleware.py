from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject

from together.actors import Actor
from together.api.errors import DATABASE_RETRY_AFTER_SECONDS, database_unavailable, database_unavailable_response, error_response
from together.ids import request_id as new_request_id
from together.logging import current_request_id

log = logging.getLogger("together.request")


def _request_actor(request) -> Actor:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor.for_user(user, request.request_id)
    return Actor(type="SYSTEM", label="anonymous", request_id=request.request_id)


class RequestIdMiddleware:
    """Give every request a `req_…` id, echo it in `x-request-id`, log one line.

    A client-sent `x-request-id` is not honoured: the id must map one-to-one to
    our logs, so we always mint our own.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        rid = new_request_id()
        request.request_id = rid
        # Who is acting, for every caller of a service (dashboard, admin, public
        # pages): read lazily, so a request that never asks never loads its user.
        # The API's authentication and DashboardMixin set it again, the same way.
        request.actor = SimpleLazyObject(lambda: _request_actor(request))
        token = current_request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["x-request-id"] = rid
            if request.path.startswith("/api/"):
                org = getattr(request, "organisation", None)
                log.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "status": response.status_code,
                        "method": request.method,
                        "path": request.path,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "organisation_id": getattr(org, "id", None),
                        "api_key_id": getattr(getattr(request, "api_key", None), "id", None),
                    },
                )
            return response
        finally:
            current_request_id.reset(token)


class ApiGuardMiddleware:
    """Checks that apply to every /api/ request before any view runs, and the
    last line of defence that turns an unhandled exception into the envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        if "x-org-slug" in request.headers:
            return error_response(
                request,
                "invalid_request",
                "The x-org-slug header is not supported: the API key alone selects the organisation. Remove the header.",
                param="x-org-slug",
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if request.path == "/api/v1/imports" and request.method == "POST":  # a file upload: 50 MB (imports/parsing.py)
            if length > getattr(settings, "IMPORTS_MAX_BYTES", 50 * 1024 * 1024) + 64 * 1024:
                return error_response(request, "invalid_request", "The file is larger than 50 MB; split it into smaller files.",
                                      param="file", extra={"reason": "file_too_large"})
        elif length > settings.API_MAX_BODY_BYTES:
            return error_response(request, "invalid_request", "The request body is larger than 1 MB.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):  # PostgreSQL down or restarting: 503 with Retry-After, not a 500
            if request.path.startswith("/api/"):
                return database_unavailable_response(request, exception)
            return database_unavailable_page(request, exception)
        if not request.path.startswith("/api/"):
            return None
        logging.getLogger("together.api").exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(request, "internal_error", "An internal error occurred. Nothing was half-stored; quote the request_id to support.")


DATABASE_UNAVAILABLE_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable · Together</title></head>'
    "<body><h1>Temporarily unavailable</h1><p>Together cannot reach its database just now. "
    "Nothing was lost; try again in a few seconds.</p></body></html>\n"
)


def database_unavailable_page(request, exception: BaseException) -> HttpResponse:
    """A dashboard page while PostgreSQL is unreachable: plain HTML, no template
    (context processors would query the database again)."""
    log.warning("Database unavailable on %s %s: %s", request.method, request.path, str(exception).strip()[:200])
    response = HttpResponse(DATABASE_UNAVAILABLE_PAGE, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response

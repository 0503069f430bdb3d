"""Errors raised by services and the API machinery.

Every error a client sees is one of these (or a DRF exception the handler maps
to one), rendered by ``together.api.errors`` into the published envelope.
"""
from __future__ import annotations

from typing import Any

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    # code: (status, title, what to do)
    "invalid_request": (400, "Invalid request", "The request is malformed: a required field is missing or has the wrong JSON type, the JSON does not parse, the body is empty or larger than 1 MB, the Content-Type of a POST or PATCH is not application/json, a query parameter is unknown, or an x-org-slug header was sent. Fix the request; retrying it unchanged will fail again. `param` names the field or parameter when one is at fault."),
    "validation_failed": (400, "Validation failed", "The request is well formed but a value is not allowed: an enum value, a number out of range, an unknown or foreign id, or a business rule (for example a donor cap). `param` names the field; some errors add machine-readable detail beside it, such as `reason` and `remaining_cents`."),
    "unauthorized": (401, "Unauthorized", "No bearer token, an unknown key or a revoked key. Send `Authorization: Bearer pc_...` with a live key from /settings/api."),
    "forbidden": (403, "Forbidden", "The key is valid but may not do this, for example a READ key on a write. Use a WRITE key."),
    "not_found": (404, "Not found", "The route or the record does not exist, or the record belongs to another organisation (including your sandbox twin). Check the id and the key you are using."),
    "method_not_allowed": (405, "Method not allowed", "The path exists but not with this method. The `Allow` response header lists the methods it accepts."),
    "conflict": (409, "Conflict", "The request conflicts with the current state: a duplicate (the message names the existing record), a record that cannot be deleted while others point at it, or a request with the same Idempotency-Key still in flight. Re-read the state, or retry the in-flight request after it completes."),
    "idempotency_conflict": (409, "Idempotency conflict", "The Idempotency-Key was already used with a different method, path or body. Use a fresh key for a different request."),
    "rate_limited": (429, "Rate limited", "Your organisation has used its 100 requests per second (burst 100), shared by all of its keys. Wait the number of seconds in `Retry-After`, and watch `RateLimit-Remaining`."),
    "internal_error": (500, "Internal error", "Something failed on our side; nothing was half-stored. Retry with the same Idempotency-Key, and quote the request_id to support if it persists."),
    "service_unavailable": (503, "Service unavailable", "A dependency is temporarily unavailable. Retry after a short wait."),
}


class ApplicationError(Exception):
    code = "invalid_request"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, param: str | None = None, **extra: Any):
        self.message = message or self.default_message
        self.param = param
        self.extra = extra
        super().__init__(self.message)

    @property
    def status_code(self) -> int:
        return ERROR_CODES[self.code][0]


class InvalidRequest(ApplicationError):
    code = "invalid_request"


class ValidationFailed(ApplicationError):
    code = "validation_failed"
    default_message = "A value is not valid."


class Unauthorized(ApplicationError):
    code = "unauthorized"
    default_message = "A valid API key is required: send Authorization: Bearer pc_..."


class Forbidden(ApplicationError):
    code = "forbidden"
    default_message = "This key may not perform this operation."


class NotFound(ApplicationError):
    code = "not_found"
    default_message = "Not found."


class Conflict(ApplicationError):
    code = "conflict"
    default_message = "The request conflicts with the current state."


class IdempotencyConflict(ApplicationError):
    code = "idempotency_conflict"
    default_message = "This Idempotency-Key was already used with a different request."


class RateLimited(ApplicationError):
    code = "rate_limited"
    default_message = "Rate limit exceeded."

    def __init__(self, message: str | None = None, *, retry_after: int = 1, **extra: Any):
        super().__init__(message, **extra)
        self.retry_after = retry_after


class MethodNotAllowed(ApplicationError):
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: list[str]):
        super().__init__(f"Method {method} is not allowed here. Allowed: {', '.join(allowed)}.")
        self.allowed = allowed

"""Idempotency-Key, as Stripe does it.

The whole handler runs in one transaction holding a transaction-level advisory
lock on (organisation, key). A successful response is stored in that same
transaction, so the key and the effect commit together or not at all. A
concurrent duplicate cannot take the lock and gets 409 `conflict`; a later
retry finds the stored row and gets the stored response back, with
`Idempotent-Replayed: true`. Error responses are not stored: they had no
effect, so the key stays free for a corrected retry.
"""
from __future__ import annotations

import hashlib
import struct
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from together.exceptions import Conflict, IdempotencyConflict, InvalidRequest
from together.models import IdempotencyKey

MAX_KEY_LENGTH = 255
REPLAYED_HEADERS = ("Location",)


def _file_digest(upload) -> dict:
    """An uploaded file by its name, size and content (read in chunks, then rewound for the handler)."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return {"name": upload.name, "size": upload.size, "sha256": digest.hexdigest()}


def _canonical_body(request):
    """The body as JSON: a JSON body as parsed; a multipart one as its fields
    (each a list of values) and its files (name, size and content digest)."""
    body = request.data if request.data is not None else {}
    if hasattr(body, "lists"):  # a QueryDict: form fields, with the files beside them in request.FILES
        files = request.FILES
        return {
            "fields": {name: values for name, values in body.lists() if name not in files},
            "files": {name: [_file_digest(upload) for upload in files.getlist(name)] for name in files},
        }
    return body


def _fingerprint(request) -> str:
    canonical = orjson.dumps(_canonical_body(request), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(request.method.encode() + b" " + request.path.encode() + b"\n" + canonical).hexdigest()


def _lock_id(organisation_id: str, key: str) -> int:
    digest = hashlib.sha256(f"idem:{organisation_id}:{key}".encode()).digest()
    return struct.unpack(">q", digest[:8])[0]


def validate_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 255 printable characters (a UUID is ideal).", param="Idempotency-Key")
    return key


def idempotent_call(*, request, key: str, call, render):
    """Run `call()` at most once per (organisation, key); `render(response)` gives its bytes."""
    key = validate_key(key)
    organisation = request.organisation
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(organisation.id, key)])
            (locked,) = cursor.fetchone()
        if not locked:
            raise Conflict("A request with this Idempotency-Key is still in flight. Retry once it has completed.", param="Idempotency-Key")
        stored = IdempotencyKey.objects.filter(organisation=organisation, key=key).first()
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    "This Idempotency-Key was already used with a different request. Use a new key for a new request.",
                    param="Idempotency-Key",
                )
            response = HttpResponse(bytes(stored.response_body), status=stored.status_code, content_type="application/json")
            for name, value in stored.response_headers.items():
                response[name] = value
            response["Idempotent-Replayed"] = "true"
            return response
        response = call()
        if 200 <= response.status_code < 300:
            IdempotencyKey.objects.create(
                organisation=organisation,
                key=key,
                fingerprint=fingerprint,
                method=request.method,
                path=request.path[:500],
                status_code=response.status_code,
                response_body=render(response),
                response_headers={h: response[h] for h in REPLAYED_HEADERS if response.has_header(h)},
            )
        return response


def idempotency_keys_prune(*, older_than_hours: int | None = None) -> int:
    """Delete the keys past their keeping time (at least 24 hours: IDEMPOTENCY_KEY_TTL_HOURS).
    A platform-level sweep across every organisation (Celery beat, hourly)."""
    hours = settings.IDEMPOTENCY_KEY_TTL_HOURS if older_than_hours is None else older_than_hours
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - timedelta(hours=hours)).delete()
    return deleted

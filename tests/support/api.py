"""Assertions on the published error envelope and small seeding helpers."""
from __future__ import annotations

import datetime as dt

from django.conf import settings

from together.actors import Actor

_MISSING = object()
ENVELOPE_KEYS = {"type", "code", "message", "request_id", "doc_url"}


def header(response, name: str) -> str | None:
    """A response header from a Django test response or a `requests` response."""
    headers = getattr(response, "headers", None)
    if headers is not None:
        return headers.get(name)
    return response.get(name)


def body_of(response) -> dict:
    return response.json()


def assert_error(response, status: int, code: str, param=_MISSING, *, message_contains: str | None = None) -> dict:
    """The response is `status` with the envelope of errors.md for `code`.

    Checks the content type, every envelope field, that `type` and `doc_url`
    are the code's page on SITE_URL, that `request_id` equals the
    `x-request-id` header, and that no stack trace leaks. Returns `error`."""
    status_code = getattr(response, "status_code")
    content = getattr(response, "content", b"")
    assert status_code == status, f"expected {status}, got {status_code}: {content[:500]!r}"
    content_type = header(response, "Content-Type") or ""
    assert content_type.split(";")[0].strip() == "application/json", content_type
    body = body_of(response)
    assert set(body) == {"error"}, body
    error = body["error"]
    missing = ENVELOPE_KEYS - set(error)
    assert not missing, f"envelope lacks {missing}: {error}"
    assert error["code"] == code, error
    url = f"{settings.SITE_URL}/developer/api/errors/{code}"
    assert error["type"] == url, error
    assert error["doc_url"] == url, error
    assert isinstance(error["message"], str) and error["message"], error
    request_id = header(response, "x-request-id")
    assert request_id and request_id.startswith("req_"), request_id
    assert error["request_id"] == request_id, (error, request_id)
    if param is not _MISSING:
        assert error.get("param") == param, error
    if message_contains is not None:
        assert message_contains in error["message"], error
    lowered = content.lower()
    for leak in (b"traceback", b'file "', b"site-packages", b".py\", line"):
        assert leak not in lowered, content
    return error


def make_donor(organisation, **fields):
    """A donor made through donor_create (the API's path): a name and a unique email unless given."""
    from donations.services import donor_create

    n = _next()
    fields.setdefault("first_name", "Dana")
    fields.setdefault("last_name", f"Donor{n}")
    fields.setdefault("email", f"donor-{n}@example.org")
    return donor_create(organisation=organisation, actor=Actor.system("tests"), **fields)


def seed_campaign(organisation, **fields):
    from donations.services import campaign_create

    fields.setdefault("name", f"Campaign {_next()}")
    return campaign_create(organisation=organisation, actor=Actor.system("tests"), **fields)


def seed_donation(organisation, donor, **fields):
    from donations.services import donation_record

    fields.setdefault("donation_type", "MONETARY")
    fields.setdefault("amount_cents", 5000)
    fields.setdefault("donation_date", dt.date(2026, 3, 1))
    return donation_record(organisation=organisation, actor=Actor.system("tests"), donor_id=donor.id, **fields)


_n = [0]


def _next() -> int:
    _n[0] += 1
    return _n[0]


def lazy_runner_compatible(request) -> None:
    """Schemathesis 4.32's lazy runner (`schemathesis.pytest.from_fixture`) reads and
    sets `node._nodeid`, which pytest 9.2 replaced with `node._id`: give it the id it reads
    (it only adds the operation to the reported id)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid

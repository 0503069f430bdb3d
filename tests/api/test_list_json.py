"""GET /api/v1/donations pages written by PostgreSQL (together.api.sqljson,
issue 15) are byte for byte what the Python rendering gives: render_donation of
the row read by the ORM, encoded by the API's renderer. Rows stress every kind
of field: escapes and non-ASCII text, control characters, nulls, timestamps
with microseconds, dates, booleans, nested and numeric JSON, a receipt."""
from __future__ import annotations

import datetime as dt

import pytest

from donations.models import Donation
from donations.representations import DONATION_FIELDS, render_donation
from donations.selectors import RECEIPT_FIELDS, donation_row_json, with_receipt
from receipts.models import Deductibility, Receipt, ReceiptKind
from tests.conftest import client_for, make_key
from tests.support.api import make_donor
from together.actors import Actor
from together.api.renderers import dumps
from together.api.sqljson import RowJson, Unsupported

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")
TRICKY = 'quote " backslash \\ slash / tab \t newline \n bell \x07 del \x7f é 漢字 \u2028 😀'


def _gift(org, donor, **fields):
    from donations.services import donation_record

    body = {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 1234, "donation_date": dt.date(2026, 3, 1),
            "payment_method": "CHEQUE"}
    return donation_record(organisation=org, actor=SYSTEM, **(body | fields))


def _expected(org, limit: int) -> bytes:
    rows = list(with_receipt(Donation.objects.for_organisation(org)).order_by("-created_at", "-id")
                .values(*DONATION_FIELDS, *RECEIPT_FIELDS)[: limit + 1])
    return dumps({"data": [render_donation(r) for r in rows[:limit]], "has_more": len(rows) > limit})


def _seed(org):
    donor = make_donor(org)
    plain = _gift(org, donor)
    tricky = _gift(org, donor, reference="ref-1", notes=TRICKY, metadata={"note": TRICKY, "k": "v"})
    voided = _gift(org, donor)
    Donation.objects.filter(pk=voided.pk).update(
        status="VOIDED", void_reason="entered twice", voided_at=dt.datetime(2026, 5, 6, 7, 8, 9, 999999, tzinfo=dt.timezone.utc),
        refund_date=dt.date(2026, 5, 7), consent_given=False,
        created_at=dt.datetime(1999, 12, 31, 23, 59, 59, 1000, tzinfo=dt.timezone(dt.timedelta(hours=10))),
    )
    Donation.objects.filter(pk=tricky.pk).update(
        custom_fields={"size": 12.5, "big": 12345678901234, "flag": True, "none": None, "nested": {"b": [1, "x"], "a": "é"},
                       "longer_key": "ü"},
        consent_given=True, updated_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    )
    _receipt(org, plain, 42)
    # Withdrawn, then issued again: the standing one shows. Withdrawn only: the latest withdrawn one.
    reissued, withdrawn = _gift(org, donor), _gift(org, donor)
    _receipt(org, reissued, 43, withdrawn=True)
    _receipt(org, reissued, 44)
    _receipt(org, reissued, 41, withdrawn=True)
    _receipt(org, withdrawn, 45, withdrawn=True)
    _receipt(org, withdrawn, 46, withdrawn=True)
    return donor


def _receipt(org, donation, number, *, withdrawn=False):
    issued_at = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    Receipt.objects.create(organisation=org, donation=donation, donor=donation.donor, number=number, kind=ReceiptKind.values[0],
                           issued_at=issued_at, amount_cents=1234, currency="AUD", donation_date=donation.donation_date,
                           deductibility=Deductibility.values[0], pdf=b"", status="WITHDRAWN" if withdrawn else "ISSUED",
                           withdrawn_at=issued_at if withdrawn else None)


def test_a_page_is_byte_for_byte_the_python_rendering(org):
    _seed(org)
    response = client_for(make_key(org)).get("/api/v1/donations?limit=100")
    assert response.status_code == 200
    assert response.content == _expected(org, 100)
    body = response.json()["data"]
    assert {(d["receipt_number"], d["receipt_status"]) for d in body} == {
        (42, "ISSUED"), (44, "ISSUED"), (46, "WITHDRAWN"), (None, None)}
    assert any(d["notes"] == TRICKY for d in body)


def test_pages_and_cursors_match_too(org):
    _seed(org)
    client = client_for(make_key(org))
    first = client.get("/api/v1/donations?limit=3")
    assert first.content == _expected(org, 3)
    assert first.json()["has_more"] is True
    last_id = first.json()["data"][-1]["id"]
    rest = client.get(f"/api/v1/donations?limit=3&starting_after={last_id}")
    assert rest.status_code == 200
    assert rest.json()["has_more"] is False
    all_ids = [d["id"] for d in client.get("/api/v1/donations?limit=100").json()["data"]]
    assert [d["id"] for d in first.json()["data"] + rest.json()["data"]] == all_ids
    back = client.get(f"/api/v1/donations?limit=3&ending_before={rest.json()['data'][0]['id']}")
    assert [d["id"] for d in back.json()["data"]] == [d["id"] for d in first.json()["data"]]


def test_a_cursor_past_the_end_is_an_empty_page_and_an_unknown_one_is_400(org, other_org):
    _seed(org)
    client = client_for(make_key(org))
    oldest = client.get("/api/v1/donations?limit=100").json()["data"][-1]["id"]
    assert client.get(f"/api/v1/donations?starting_after={oldest}").json() == {"data": [], "has_more": False}
    stranger = _gift(other_org, make_donor(other_org))
    response = client.get(f"/api/v1/donations?starting_after={stranger.id}")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "starting_after"


def test_filters_and_expand_still_apply(org):
    _seed(org)
    client = client_for(make_key(org))
    voided = client.get("/api/v1/donations?status=VOIDED").json()["data"]
    assert [d["status"] for d in voided] == ["VOIDED"]
    expanded = client.get("/api/v1/donations?expand[]=donor").json()["data"]
    assert all(d["donor"]["object"] == "donor" for d in expanded)


def test_a_field_sqljson_cannot_write_keeps_the_python_path():
    class Fake:
        __name__ = "Fake"

        class _meta:
            db_table = "t"

            @staticmethod
            def get_field(name):
                class F:
                    column = name

                    @staticmethod
                    def get_internal_type():
                        return "DecimalField"

                return F

    with pytest.raises(Unsupported):
        RowJson.for_model(Fake, ("amount",))
    assert donation_row_json() is not None  # every donation field is one it writes


def test_a_compiled_page_serves_each_organisation_and_cursor_its_own_rows(org, other_org):
    """Pages of one shape are compiled once per process (together.api.sqljson._compile);
    each request still gets its own organisation's rows and its own cursor."""
    from together.api import sqljson

    _seed(org)
    _seed(other_org)
    mine, theirs = client_for(make_key(org)), client_for(make_key(other_org))
    for _ in range(3):  # compiled, then checked against a second compile, then reused
        assert mine.get("/api/v1/donations?limit=2").content == _expected(org, 2)
        assert theirs.get("/api/v1/donations?limit=2").content == _expected(other_org, 2)
    assert any(isinstance(e, sqljson._Compiled) and e.checked for e in sqljson._compiled.values())
    for client, organisation in ((mine, org), (theirs, other_org)):
        ids = [d["id"] for d in client.get("/api/v1/donations?limit=100").json()["data"]]
        for i in range(len(ids) - 1):
            page = client.get(f"/api/v1/donations?limit=1&starting_after={ids[i]}").json()
            assert [d["id"] for d in page["data"]] == [ids[i + 1]]
        assert client.get(f"/api/v1/donations?limit=1&starting_after={ids[-1]}").json()["data"] == []
    stranger = [d["id"] for d in theirs.get("/api/v1/donations?limit=1").json()["data"]][0]
    assert mine.get(f"/api/v1/donations?limit=1&starting_after={stranger}").status_code == 400


def test_a_checked_shape_builds_no_queryset(org, other_org, monkeypatch):
    """Once a shape's statement is compiled and checked, its pages run it directly
    (ApiMixin.list_compiled_page): no queryset is built, and the pages are the same
    bytes, cursors and has_more included, forwards and backwards."""
    from donations.api.views import DonationViewSet

    _seed(org)
    for _ in range(5):
        _gift(org, make_donor(org, email=None, first_name="Extra"))
    client = client_for(make_key(org))
    ids = [d["id"] for d in client.get("/api/v1/donations?limit=100").json()["data"]]
    paths = ["/api/v1/donations?limit=3", f"/api/v1/donations?limit=3&starting_after={ids[2]}",
             f"/api/v1/donations?limit=3&ending_before={ids[6]}"]
    first = {path: client.get(path).content for path in paths}
    for path in paths:  # the second compile, checked against the first
        assert client.get(path).content == first[path]

    def no_queryset(self):
        raise AssertionError("a checked shape built its queryset")

    monkeypatch.setattr(DonationViewSet, "get_list_queryset", no_queryset)
    for path in paths:
        assert client.get(path).content == first[path]
    assert [d["id"] for d in client.get(paths[1]).json()["data"]] == ids[3:6]
    assert [d["id"] for d in client.get(paths[2]).json()["data"]] == ids[3:6]
    assert client.get(paths[0]).json()["has_more"] is True
    # Another organisation's key runs the same statement with its own id: its rows only.
    theirs = client_for(make_key(other_org))
    monkeypatch.undo()
    _gift(other_org, make_donor(other_org))
    for _ in range(2):
        theirs.get("/api/v1/donations?limit=3")
    monkeypatch.setattr(DonationViewSet, "get_list_queryset", no_queryset)
    assert [d["donor_id"] for d in theirs.get("/api/v1/donations?limit=3").json()["data"]] == \
        [d.donor_id for d in Donation.objects.for_organisation(other_org)]

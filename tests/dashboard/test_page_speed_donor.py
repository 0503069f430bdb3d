"""The donor page reads a fixed number of statements however many gifts the donor has:
its gifts table shows each gift's donor (the page's own donor), read with the gifts, not
once per row (a donor with 13 gifts took 31 statements on the bench, 18 now)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations import services
from organisations.models import Role
from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import SYSTEM

pytestmark = pytest.mark.django_db


def _statements(client, donor) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/donors/{donor.id}/")
    assert response.status_code == 200
    return len(queries.captured_queries), response.content.decode()


def test_the_donor_page_takes_the_same_statements_for_one_gift_and_twenty(org):
    client = client_as(make_user(org, Role.VIEWER), organisation=org)
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Gail", last_name="Manygifts")
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                             amount_cents=1000, donation_date=dt.date(2026, 1, 5), payment_method="CASH")
    client.get(f"/donors/{donor.id}/")  # warm: the session and per-process caches
    one, _ = _statements(client, donor)
    for day in range(1, 20):
        services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                 amount_cents=1000 + day, donation_date=dt.date(2026, 2, day), payment_method="CASH")
    twenty, html = _statements(client, donor)
    assert twenty == one
    assert html.count(f'<a href="/donors/{donor.id}/">Gail Manygifts</a>') >= 20  # every row still names the donor

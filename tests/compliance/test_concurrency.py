"""Simultaneous gifts at the cap edge, over HTTP, to two server processes at
once: exactly the gifts that fit are stored, the rest are refused with the cap
error, none is a 5xx, and the stored total never passes the cap.

One burst carries 24 monetary gifts of one donor against the federal 2027 cap
and 12 in-kind gifts of another donor against the NSW cap (FY 2025-26); each
donor has room for exactly six."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.db.models import Sum

from compliance.models import DonorAggregate
from donations.models import Donation, Donor
from organisations.models import AuditEntry
from tests.compliance.helpers import D, FED_CAP, NSW_CAP, code, gift
from tests.support.api import make_donor
from tests.conftest import make_key, make_org
from tests.support.servers import gunicorn_servers

GIFT = 50_000       # $500 each
FITS = 6            # the room left fits exactly six gifts for each donor


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_gifts_at_the_cap_edge_over_two_server_processes():
    assert connection.settings_dict["NAME"].startswith("test_")
    org = make_org("Concurrent")
    key = make_key(org, "WRITE")
    code(org, "NSW-CAMPAIGN", "NSW")
    federal, nsw = make_donor(org), make_donor(org)
    gift(org, federal, FED_CAP - FITS * GIFT, D(2027, 1, 10))
    gift(org, nsw, NSW_CAP - FITS * GIFT, D(2025, 9, 1), revenue_code="nsw-campaign")
    connection.close()  # nothing of ours held open while the servers run

    bodies = [("FEDERAL", {"donor_id": federal.id, "donation_type": "MONETARY", "amount_cents": GIFT, "donation_date": "2027-06-01"})] * 24
    bodies += [("NSW", {"donor_id": nsw.id, "donation_type": "IN_KIND", "amount_cents": GIFT, "donation_date": "2026-03-01",
                        "revenue_code": "NSW-campaign", "in_kind_category": "SERVICES", "in_kind_description": "Hall hire"})] * 12
    barrier = threading.Barrier(len(bodies))
    with gunicorn_servers(2, workers=1, threads=8, env={"RATE_LIMIT_ENABLED": "0"}) as servers:
        def send(i: int):
            which, body = bodies[i]
            url = servers[i % 2].url
            session = requests.Session()
            barrier.wait(timeout=60)
            response = session.post(f"{url}/api/v1/donations", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=120)
            return which, response.status_code, response.json(), url

        with ThreadPoolExecutor(len(bodies)) as pool:
            results = list(pool.map(send, range(len(bodies))))
        outputs = [s.output() for s in servers]

    assert not [r for r in results if r[1] >= 500], (results, outputs)
    assert {url for *_, url in results} == {s.url for s in servers}
    for which, donor, cap, sent in (("FEDERAL", federal, FED_CAP, 24), ("NSW", nsw, NSW_CAP, 12)):
        statuses = [status for w, status, _, _ in results if w == which]
        assert (statuses.count(201), statuses.count(400), len(statuses)) == (FITS, sent - FITS, sent), (which, results)
        refusals = [body["error"] for w, status, body, _ in results if w == which and status == 400]
        assert all(e["code"] == "validation_failed" and e["param"] == "amount_cents" and e["reason"] == "donor_cap_exceeded"
                   and e["remaining_cents"] == 0 for e in refusals), refusals
        stored = Donation.objects.filter(donor_id=donor.id, status="CONFIRMED")
        assert stored.count() == 1 + FITS
        assert stored.aggregate(s=Sum("amount_cents"))["s"] == cap
        aggregate = DonorAggregate.objects.get(donor_id=donor.id, rule__cap_cents__isnull=False)
        assert (aggregate.jurisdiction, aggregate.total_cents, aggregate.donations_count, aggregate.alert_level) == (which, cap, 1 + FITS, "CRITICAL")
        assert Donor.objects.get(pk=donor.id).donations_total_cents == cap
    assert AuditEntry.objects.filter(organisation=org, action="donation.created").count() == 2 * (1 + FITS)

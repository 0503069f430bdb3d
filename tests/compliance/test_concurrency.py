"""Simultaneous gifts of one donor at the cap edge, over HTTP, to two server
processes at once: exactly the gifts that fit are stored, the rest are refused
with the cap error, none is a 5xx, and the stored total never passes the cap."""
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
from tests.compliance.helpers import D, FED_CAP, code, gift, make_donor
from tests.conftest import make_key, make_org
from tests.support.servers import gunicorn_servers

N = 24              # concurrent gifts
GIFT = 50_000       # $500 each
FITS = 6            # the room left fits exactly six of them


CASES = [
    # label, what the donor already gave (cents, in cap), revenue code jurisdiction or None for the default
    ("federal cap, 2027", FED_CAP - FITS * GIFT, None),
    ("NSW cap, FY 2025-26, in-kind", 790_000 - FITS * GIFT, "NSW"),
]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("label, given, jurisdiction", CASES, ids=[c[0] for c in CASES])
def test_concurrent_gifts_at_the_cap_edge_over_two_server_processes(label, given, jurisdiction):
    assert connection.settings_dict["NAME"].startswith("test_")
    org = make_org("Concurrent")
    key = make_key(org, "WRITE")
    donor = make_donor(org)
    day, kind, extra = ("2027-06-01", "MONETARY", {}) if jurisdiction is None else ("2026-03-01", "IN_KIND", {
        "revenue_code": "nsw-campaign", "in_kind_category": "SERVICES", "in_kind_description": "Hall hire"})
    if jurisdiction:
        code(org, "NSW-CAMPAIGN", jurisdiction)
    gift(org, donor, given, D.fromisoformat(day), revenue_code=extra.get("revenue_code"))
    connection.close()  # nothing of ours held open while the servers run

    body = {"donor_id": donor.id, "donation_type": kind, "amount_cents": GIFT, "donation_date": day, **extra}
    barrier = threading.Barrier(N)
    with gunicorn_servers(2, workers=2, threads=4, env={"RATE_LIMIT_ENABLED": "0"}) as servers:
        def send(i: int):
            session = requests.Session()
            barrier.wait(timeout=30)
            response = session.post(f"{servers[i % 2].url}/api/v1/donations", json=body,
                                    headers={"Authorization": f"Bearer {key}"}, timeout=60)
            return response.status_code, response.json(), servers[i % 2].url

        with ThreadPoolExecutor(N) as pool:
            results = list(pool.map(send, range(N)))
        outputs = [s.output() for s in servers]

    statuses = [status for status, _, _ in results]
    assert not [r for r in results if r[0] >= 500], (results, outputs)
    assert statuses.count(201) == FITS, (statuses, results)
    assert statuses.count(400) == N - FITS, statuses
    assert {url for _, _, url in results} == {s.url for s in servers}
    refusals = [body["error"] for status, body, _ in results if status == 400]
    assert all(e["code"] == "validation_failed" and e["param"] == "amount_cents" and e["reason"] == "donor_cap_exceeded"
               and e["remaining_cents"] == 0 for e in refusals), refusals

    stored = Donation.objects.filter(donor_id=donor.id, status="CONFIRMED")
    assert stored.count() == 1 + FITS
    cap = FED_CAP if jurisdiction is None else 790_000
    assert stored.aggregate(s=Sum("amount_cents"))["s"] == cap
    aggregate = DonorAggregate.objects.get(donor_id=donor.id, rule__cap_cents__isnull=False)
    assert (aggregate.total_cents, aggregate.donations_count, aggregate.alert_level) == (cap, 1 + FITS, "CRITICAL")
    assert Donor.objects.get(pk=donor.id).donations_total_cents == cap
    assert AuditEntry.objects.filter(organisation=org, action="donation.created").count() == 1 + FITS

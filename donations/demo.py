"""Demo donors, campaigns and gifts for `make run` (idempotent: skipped once present).

A few hundred donors of every type and a few thousand gifts of every type and
method over two financial years, all recorded through the services (so totals,
compliance aggregates, obligations and alerts are real). The sandbox twin gets
its small deterministic dataset: one donor and one donation.
"""
from __future__ import annotations

import datetime as dt
import random

from donations import services
from donations.models import Donor
from together.demo import DemoContext, demo_step
from together.exceptions import ValidationFailed

FIRST = ["Alice", "Bilal", "Chen", "Deepa", "Eamon", "Fatima", "Grace", "Hamish", "Ines", "Jack", "Kiri", "Liam", "Mei",
         "Noah", "Olivia", "Priya", "Quinn", "Ruby", "Sione", "Tara", "Uma", "Vikram", "Wren", "Xavier", "Yara", "Zoe"]
LAST = ["Nguyen", "Smith", "Williams", "Brown", "Jones", "Singh", "Wilson", "Taylor", "Kelly", "Murphy", "Chen", "Patel",
        "O'Brien", "Walker", "Campbell", "Anderson", "Tran", "Martin", "Thompson", "White"]
ORGS = ["Riverside Co-op", "Harbour Builders Union", "Greenleaf Trust", "Sunrise Bakery", "Coastal Legal", "Mallee Farmers",
        "Northside Printing", "Bluegum Consulting", "Wattle Foundation", "Eastern Health Workers"]
SUBURBS = [("Fitzroy", "VIC", "3065"), ("Newtown", "NSW", "2042"), ("West End", "QLD", "4101"), ("Fremantle", "WA", "6160"),
           ("Braddon", "ACT", "2612"), ("Glenelg", "SA", "5045"), ("Battery Point", "TAS", "7004"), ("Parap", "NT", "0820")]
CODES = [("FCA-2026", "FEDERAL"), ("NSW-STATE", "NSW"), ("VIC-STATE", "VIC"), ("ADMIN-FUND", "UNREGULATED")]


@demo_step(order=100, name="donations.records")
def demo_records(ctx: DemoContext) -> None:
    org, actor = ctx.organisation, ctx.actor
    if Donor.objects.for_organisation(org).exists():
        ctx.report(f"Demo records: already loaded ({Donor.objects.for_organisation(org).count()} donors)")
        return
    from compliance.services import revenue_code_create

    for code, jurisdiction in CODES:
        revenue_code_create(organisation=org, actor=actor, code=code, jurisdiction=jurisdiction)
    rng = random.Random(20261122)
    campaigns = [
        services.campaign_create(organisation=org, actor=actor, name=name, goal_cents=goal, starts_at=start, ends_at=end)
        for name, goal, start, end in [
            ("Clean Rivers 2026", 25_000_000, dt.date(2025, 7, 1), dt.date(2026, 6, 30)),
            ("Election Fighting Fund", 50_000_000, dt.date(2026, 1, 1), None),
            ("Community Organisers", 10_000_000, dt.date(2025, 9, 1), None),
            ("Winter Appeal", 5_000_000, dt.date(2026, 5, 1), dt.date(2026, 8, 31)),
        ]
    ]
    donors = []
    for i in range(300):
        kind = rng.choices(["INDIVIDUAL", "ORGANISATION", "TRUST", "UNKNOWN"], [80, 12, 5, 3])[0]
        suburb, state, postcode = rng.choice(SUBURBS)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        fields = {"donor_type": kind, "suburb": suburb, "state": state, "postcode": postcode,
                  "address_line1": f"{rng.randint(1, 200)} {rng.choice(['High', 'Station', 'Church', 'Beach', 'Mill'])} St"}
        if kind == "INDIVIDUAL":
            fields |= {"first_name": first, "last_name": last, "email": f"{first}.{last}.{i}@example.org".lower().replace("'", "")}
        elif kind in ("ORGANISATION", "TRUST"):
            name = rng.choice(ORGS) + ("" if i < 20 else f" {i}")
            fields |= {"organisation_name": name, "email": f"donations{i}@{name.split()[0].lower()}.example.org"}
        else:
            fields |= {"notes": "Anonymous envelope donor"}
            fields["first_name"] = f"Unknown {i}"
        donors.append(services.donor_create(organisation=org, actor=actor, **fields))
    start, days = dt.date(2024, 7, 1), (dt.date(2026, 11, 15) - dt.date(2024, 7, 1)).days
    recorded = refused = 0
    for n in range(2600):
        donor = rng.choice(donors[:40]) if rng.random() < 0.3 else rng.choice(donors)
        day = start + dt.timedelta(days=rng.randint(0, days))
        code = rng.choices([c for c, _ in CODES] + [None], [45, 15, 10, 10, 20])[0]
        campaign = rng.choice(campaigns + [None, None])
        in_kind = rng.random() < 0.08
        amount = rng.choice([2_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000]) if rng.random() < 0.97 else rng.choice([500_000, 1_000_000])
        kwargs = {"donation_type": "IN_KIND" if in_kind else "MONETARY", "amount_cents": amount, "donation_date": day,
                  "revenue_code": code, "campaign_id": campaign.id if campaign and campaign.status == "ACTIVE" else None}
        if in_kind:
            kwargs |= {"in_kind_category": rng.choice(["GOODS", "SERVICES", "DISCOUNT", "OTHER"]),
                       "in_kind_description": rng.choice(["Printing of 5,000 leaflets", "Pro bono legal advice", "Venue hire for a rally",
                                                          "Catering for volunteers", "Discounted van hire"]),
                       "in_kind_valuation_method": "Supplier's standard price list"}
        else:
            method = rng.choice(["CASH", "CHEQUE", "CHEQUE", "BANK_TRANSFER", "BANK_TRANSFER", "CARD"])
            kwargs |= {"payment_method": method, "reference": f"{100000 + n}" if method == "CHEQUE" else None}
        try:
            gift = services.donation_record(organisation=org, actor=actor, donor_id=donor.id, **kwargs)
            recorded += 1
        except ValidationFailed:
            refused += 1
            continue
        if n % 97 == 0 and gift.donation_type == "MONETARY":
            services.donation_refund(organisation=org, actor=actor, donation_id=gift.id, refund_date=day, reason="Returned at the donor's request")
        elif n % 131 == 0:
            services.donation_void(organisation=org, actor=actor, donation_id=gift.id, reason="Entered twice")
    sandbox = ctx.sandbox
    if sandbox is not None and not Donor.objects.for_organisation(sandbox).exists():
        test_donor = services.donor_create(organisation=sandbox, actor=actor, first_name="Test", last_name="Donor", email="test.donor@example.org")
        services.donation_record(organisation=sandbox, actor=actor, donor_id=test_donor.id, donation_type="MONETARY", amount_cents=5_000,
                                 donation_date=dt.date(2026, 7, 1), payment_method="CARD")
    ctx.report(f"Demo records: {len(donors)} donors, {recorded} gifts ({refused} refused at a cap), {len(campaigns)} campaigns")

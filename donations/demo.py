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
    from django.utils import timezone

    # Up to yesterday (at the earliest 15 November 2026), so the current month has its gifts too.
    start, days = dt.date(2024, 7, 1), (max(dt.date(2026, 11, 15), timezone.localdate() - dt.timedelta(days=1)) - dt.date(2024, 7, 1)).days
    recorded = refused = 0
    for n in range(2600):
        donor = rng.choice(donors[:40]) if rng.random() < 0.3 else rng.choice(donors)
        day = _seasonal_day(rng, start, days)
        code = rng.choices([c for c, _ in CODES] + [None], [45, 15, 10, 10, 20])[0]
        # A gift goes to a campaign running on its day (most do while one runs).
        running = [c for c in campaigns if c.starts_at <= day and (c.ends_at is None or day <= c.ends_at)]
        campaign = rng.choice(running) if running and rng.random() < 0.7 else None
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
    _goals_that_fit(ctx, campaigns)
    near = _donors_near_caps(ctx)
    sandbox = ctx.sandbox
    if sandbox is not None and not Donor.objects.for_organisation(sandbox).exists():
        test_donor = services.donor_create(organisation=sandbox, actor=actor, first_name="Test", last_name="Donor", email="test.donor@example.org")
        services.donation_record(organisation=sandbox, actor=actor, donor_id=test_donor.id, donation_type="MONETARY", amount_cents=5_000,
                                 donation_date=dt.date(2026, 7, 1), payment_method="CARD")
    ctx.report(f"Demo records: {len(donors)} donors, {recorded} gifts ({refused} refused at a cap), {len(campaigns)} campaigns, "
               f"{near} donors near a cap this period")


# Gifts by month of the year: the end of the financial year (June) and Christmas run high,
# January is quiet. A gift's day is drawn uniformly, then kept with its month's weight.
MONTH_WEIGHT = {1: 0.45, 2: 0.6, 3: 0.8, 4: 0.75, 5: 1.1, 6: 2.0, 7: 0.9, 8: 0.8, 9: 0.85, 10: 0.9, 11: 1.1, 12: 1.45}


def _seasonal_day(rng: random.Random, start: dt.date, days: int) -> dt.date:
    top = max(MONTH_WEIGHT.values())
    while True:
        day = start + dt.timedelta(days=rng.randint(0, days))
        if rng.random() * top <= MONTH_WEIGHT[day.month]:
            return day


# What each campaign raised against its goal, as the story goes: Clean Rivers (ended) beat
# its goal, the Winter Appeal (ended) fell a little short, the two running ones are on their way.
GOAL_SHARE = {"Clean Rivers 2026": 1.12, "Winter Appeal": 0.93, "Election Fighting Fund": 0.58, "Community Organisers": 0.76}


def _goals_that_fit(ctx: DemoContext, campaigns) -> None:
    """Set each campaign's goal to a round figure that puts what it raised at its GOAL_SHARE."""
    from donations.selectors import campaign_rollups

    rollups = campaign_rollups(organisation=ctx.organisation, campaign_ids=[c.id for c in campaigns])
    for campaign in campaigns:
        raised = (rollups.get(campaign.id) or {}).get("raised_cents") or 0
        if raised and campaign.name in GOAL_SHARE:
            goal = max(100_000, round(raised / GOAL_SHARE[campaign.name] / 500_000) * 500_000)  # to $5,000
            services.campaign_update(organisation=ctx.organisation, actor=ctx.actor, campaign_id=campaign.id, goal_cents=goal)


# Donors who have given most of a cap in the period running today (NSW and VIC caps).
NEAR_CAP = [("Harbour Builders Union", "NSW-STATE", 95), ("Alice", "NSW-STATE", 84), ("Mallee Farmers", "VIC-STATE", 91)]


def _donors_near_caps(ctx: DemoContext) -> int:
    """Give a few donors gifts today that take them to a share of the cap in force (asked of
    compliance.rules), so the home page's alerts and the donor page's gauges have something current."""
    from django.utils import timezone

    from compliance.rules import cap_room
    from compliance.selectors import jurisdiction_preview

    org, today, made = ctx.organisation, timezone.localdate(), 0
    for i, (name, code, percent) in enumerate(NEAR_CAP):
        fields = ({"donor_type": "ORGANISATION", "organisation_name": f"{name} (state branch)"} if " " in name else
                  {"first_name": name, "last_name": "Okafor", "email": f"{name.lower()}.okafor@example.org"})
        donor = services.donor_create(organisation=org, actor=ctx.actor, suburb="Newtown", state="NSW", postcode="2042", **fields)
        room = cap_room(donor_id=donor.id, jurisdiction=jurisdiction_preview(organisation=org, code=code), day=today)
        if room is None:
            continue
        amount = room["cap"] * percent // 100 - room["total"]
        if amount > 0:
            services.donation_record(organisation=org, actor=ctx.actor, donor_id=donor.id, donation_type="MONETARY",
                                     amount_cents=amount, donation_date=today, revenue_code=code, payment_method="BANK_TRANSFER",
                                     reference=f"DEMO-CAP-{i + 1}")
            made += 1
    return made

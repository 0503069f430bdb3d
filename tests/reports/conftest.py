"""Generated books for the report tests: gifts recorded through the services
(compliance runs as in production), with a Python ledger of what was recorded,
so that every expected row and total is computed here, independently of the
report SQL."""
from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass, field

import pytest

from compliance import services as compliance
from donations import services
from tests.conftest import make_org
from together.actors import Actor

SYSTEM = Actor.system("tests")
D = dt.date
FY_START, FY_END = D(2025, 7, 1), D(2026, 6, 30)
FED_THRESHOLD_FY26 = 1_730_000  # more than $17,300 in FY 2025-26

# Names a spreadsheet would run as formulas.
HOSTILE = ["=HYPERLINK(\"http://x.example\",\"x\")", "+61 400 000 000", "-2+3", "@SUM(A1:A2)", "\tTabbed", "\rReturn"]


@dataclass
class Gift:
    id: str
    organisation_id: str
    donor_id: str
    campaign_id: str | None
    donation_type: str
    amount_cents: int
    donation_date: dt.date
    payment_method: str | None
    revenue_code: str
    jurisdiction: str
    status: str = "CONFIRMED"
    in_kind_category: str | None = None
    in_kind_valuation_method: str | None = None
    batch_id: str | None = None


@dataclass
class Books:
    org: object
    other_org: object
    sandbox: object
    donors: dict = field(default_factory=dict)  # id -> Donor
    campaigns: dict = field(default_factory=dict)  # id -> Campaign
    gifts: list[Gift] = field(default_factory=list)  # every gift of every organisation
    batches: list = field(default_factory=list)

    def of(self, organisation) -> list[Gift]:
        return [g for g in self.gifts if g.organisation_id == organisation.id]

    def in_range(self, organisation=None, start=FY_START, end=FY_END) -> list[Gift]:
        return [g for g in self.of(organisation or self.org) if start <= g.donation_date <= end]


def record(books: Books, organisation, donor, amount: int, day: dt.date, *, kind="MONETARY", method="CASH",
           campaign=None, revenue_code="FED-1", jurisdiction="FEDERAL", **extra) -> Gift:
    fields = dict(donation_type=kind, amount_cents=amount, donation_date=day, revenue_code=revenue_code,
                  campaign_id=campaign.id if campaign else None, reference=extra.pop("reference", f"R{len(books.gifts)}"))
    category, description = extra.pop("category", "SERVICES"), extra.pop("description", "Printing")
    valuation = extra.pop("valuation", "Supplier's list price")
    if kind == "IN_KIND":
        fields |= dict(in_kind_category=category, in_kind_description=description, in_kind_valuation_method=valuation)
    else:
        fields["payment_method"] = method
    fields |= extra
    donation = services.donation_record(organisation=organisation, actor=SYSTEM, donor_id=donor.id, **fields)
    gift = Gift(id=donation.id, organisation_id=organisation.id, donor_id=donor.id, campaign_id=fields["campaign_id"],
                donation_type=kind, amount_cents=amount, donation_date=day, payment_method=fields.get("payment_method"),
                revenue_code=revenue_code, jurisdiction=jurisdiction, in_kind_category=fields.get("in_kind_category"),
                in_kind_valuation_method=fields.get("in_kind_valuation_method"))
    books.gifts.append(gift)
    return gift


def build_books(seed: int = 7) -> Books:
    rng = random.Random(seed)
    org, other_org = make_org("Acme"), make_org("Other")
    books = Books(org=org, other_org=other_org, sandbox=org.sandbox)
    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="FED-1", jurisdiction="FEDERAL")
    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="ACT-1", jurisdiction="ACT")
    names = [("Ada", "Lovelace"), ("Grace", "Hopper"), (HOSTILE[0], "Formula"), ("Ngaio", "Marsh"), ("Zoë", "Đặng"),
             ("Edsger", "Dijkstra"), ("Barbara", "Liskov")]
    for n, (first, last) in enumerate(names):
        donor = services.donor_create(organisation=org, actor=SYSTEM, first_name=first, last_name=last,
                                      email=f"d{n}@acme.example", address_line1=f"{n + 1} Long Street",
                                      suburb=HOSTILE[3] if n == 2 else "Carlton", state="VIC", postcode="3053",
                                      phone=HOSTILE[1] if n == 2 else None)
        books.donors[donor.id] = donor
    for name in ("Spring appeal", HOSTILE[2]):
        campaign = services.campaign_create(organisation=org, actor=SYSTEM, name=name)
        books.campaigns[campaign.id] = campaign
    donors, campaigns = list(books.donors.values()), [None, *books.campaigns.values()]
    methods = ["CASH", "CHEQUE", "BANK_TRANSFER", "CARD", "OTHER"]
    start = D(2025, 5, 20)
    for n in range(54):
        day = start + dt.timedelta(days=rng.randrange(0, 470))  # 2025-05-20 .. 2026-09-01: both sides of the FY
        kind = "IN_KIND" if n % 6 == 0 else "MONETARY"
        jurisdiction = "ACT" if n % 5 == 0 else "FEDERAL"
        record(books, org, donors[n % 5 + 2], rng.randrange(100, 90_000), day, kind=kind, method=methods[n % 5],
               campaign=campaigns[n % 3], revenue_code="ACT-1" if jurisdiction == "ACT" else "FED-1", jurisdiction=jurisdiction,
               description="Printing", valuation="Supplier's list price",
               reference=HOSTILE[0] if n == 1 else f"R{n}")
    # Two donors around the federal threshold of FY 2025-26 (more than $17,300).
    ada, grace = donors[0], donors[1]
    record(books, org, ada, 1_000_000, D(2025, 8, 1), method="BANK_TRANSFER")
    record(books, org, ada, 730_001, D(2026, 2, 3), kind="IN_KIND", category="GOODS", description="Laptops")
    record(books, org, grace, 1_000_000, D(2025, 9, 9), method="CHEQUE")
    record(books, org, grace, 730_000, D(2026, 3, 3), method="CHEQUE")  # exactly the threshold: not over
    record(books, org, ada, 5_000_000, D(2026, 7, 2), method="CARD")  # next FY: not in the return
    # Statuses: voided and refunded gifts stay in the ledger with their status.
    for gift in [g for g in books.of(org) if g.donation_type == "MONETARY"][3:9:2]:
        services.donation_void(organisation=org, actor=SYSTEM, donation_id=gift.id, reason="entered in error")
        gift.status = "VOIDED"
    for gift in [g for g in books.of(org) if g.donation_type == "MONETARY"][4:10:2]:
        services.donation_refund(organisation=org, actor=SYSTEM, donation_id=gift.id, refund_date=gift.donation_date,
                                 reason="asked for it back")
        gift.status = "REFUNDED"
    # A posted deposit batch of two cheques.
    batch = services.batch_save_draft(
        organisation=org, actor=SYSTEM, reference="DEP-0042", deposit_date=D(2025, 10, 15), control_count=2,
        control_total_cents=35_000, payment_method="CHEQUE",
        rows=[{"donor_id": donors[3].id, "amount_cents": 20_000, "donation_date": D(2025, 10, 13), "revenue_code": "FED-1"},
              {"donor_id": donors[4].id, "amount_cents": 15_000, "donation_date": D(2025, 10, 14), "revenue_code": "FED-1"}],
    )
    services.batch_post(organisation=org, actor=SYSTEM, batch_id=batch.id)
    batch.refresh_from_db()
    books.batches.append(batch)
    for row in batch.rows.all():
        books.gifts.append(Gift(id=row.donation_id, organisation_id=org.id, donor_id=row.donor_id, campaign_id=None,
                                donation_type="MONETARY", amount_cents=row.amount_cents, donation_date=row.donation_date,
                                payment_method="CHEQUE", revenue_code="FED-1", jurisdiction="FEDERAL", batch_id=batch.id))
    # Gifts of the other organisation and of the sandbox twin, inside the range: never in Acme's files.
    for organisation in (other_org, books.sandbox):
        donor = services.donor_create(organisation=organisation, actor=SYSTEM, first_name="Leak", last_name="Check",
                                      email=f"leak@{organisation.slug}.example")
        for day in (D(2025, 8, 1), D(2026, 1, 1)):
            record(books, organisation, donor, 2_000_000, day, method="CASH", revenue_code="FED-1")
    return books


@pytest.fixture(scope="module")
def books(django_db_setup, django_db_blocker):
    """Built once per module inside a transaction rolled back at the end; each
    test runs in its own savepoint inside it (pytest-django's `db`), so what a
    test changes is undone after it."""
    from django.db import transaction

    with django_db_blocker.unblock():
        with transaction.atomic():
            yield build_books()
            transaction.set_rollback(True)


def parse_csv(data: bytes) -> tuple[list[str], list[dict]]:
    text = data.decode("utf-8")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = list(reader)
    header, body = rows[0], rows[1:]
    return header, [dict(zip(header, row)) for row in body]


@pytest.fixture(autouse=True)
def _reports_settings(settings, tmp_path):
    settings.RATE_LIMIT_ENABLED = False
    settings.REPORTS_EXPORT_DIR = tmp_path / "exports"


@pytest.fixture
def eager_celery():
    from together.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before

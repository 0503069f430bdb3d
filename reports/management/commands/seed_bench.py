"""Load many donors and donations fast, for benchmarks: `COPY … FROM STDIN`.

    manage.py seed_bench [--org bench] [--donations 1000000] [--donors 50000] [--campaigns 20]

Idempotent: rows carry `external_id` `bench-…`; the command tops the
organisation up to the asked numbers and does nothing when they are there.
Rows go straight into the tables (no services: no audit entries, no webhooks
events, no compliance recomputation), with the jurisdiction stamped from a
small set of revenue codes and the donors' totals set in one UPDATE at the end.
Dates spread over the current and the previous financial year.
"""
from __future__ import annotations

import datetime as dt
import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from donations.models import Campaign, Donation, Donor
from organisations.models import Organisation
from reports.exporters import financial_year_of
from together.ids import new_id

FIRST = ["Alex", "Sam", "Jordan", "Chris", "Taylor", "Morgan", "Jamie", "Robin", "Kim", "Lee", "Ana", "Zoë", "Ngaio", "Đức"]
LAST = ["Nguyen", "Smith", "Williams", "Brown", "Jones", "O'Brien", "Tran", "Singh", "Wilson", "Taylor", "Müller", "Lee"]
SUBURBS = [("Parramatta", "NSW", "2150"), ("Fitzroy", "VIC", "3065"), ("Fortitude Valley", "QLD", "4006"),
           ("Glenelg", "SA", "5045"), ("Fremantle", "WA", "6160"), ("Braddon", "ACT", "2612"), ("Hobart", "TAS", "7000")]
CODES = [("FED-GEN", "FEDERAL"), ("NSW-STATE", "NSW"), ("VIC-STATE", "VIC"), ("ADMIN", "UNREGULATED")]
METHODS = ["CARD", "CARD", "CARD", "BANK_TRANSFER", "CASH", "CHEQUE"]


class Command(BaseCommand):
    help = "COPY-load donors and donations for benchmarks (idempotent top-up)."

    def add_arguments(self, parser):
        parser.add_argument("--org", default="bench", help="Slug of a live organisation (created if missing).")
        parser.add_argument("--donations", type=int, default=1_000_000)
        parser.add_argument("--donors", type=int, default=50_000)
        parser.add_argument("--campaigns", type=int, default=20)
        parser.add_argument("--seed", type=int, default=20261122)

    def handle(self, *args, org, donations, donors, campaigns, seed, **options):
        organisation = Organisation.objects.filter(slug=org, is_sandbox=False).first()
        if organisation is None:
            if org.endswith("-sandbox"):
                raise CommandError("Give the live organisation's slug.")
            from organisations.services import organisation_create

            organisation = organisation_create(name=org.replace("-", " ").title(), slug=org)
        rng = random.Random(seed)
        started = time.monotonic()
        campaign_ids = self._campaigns(organisation, campaigns)
        donor_ids = self._donors(organisation, donors, rng)
        added = self._donations(organisation, donations, donor_ids, campaign_ids, rng)
        self.stdout.write(f"seed_bench: {organisation.slug}: {len(donor_ids):,} donors, "
                          f"{Donation.objects.for_organisation(organisation).filter(external_id__startswith='bench-').count():,} "
                          f"bench donations ({added:,} added) in {time.monotonic() - started:.1f} s")

    def _campaigns(self, organisation, wanted: int) -> list[str]:
        existing = list(Campaign.objects.for_organisation(organisation).filter(external_id__startswith="bench-").values_list("id", flat=True))
        for n in range(len(existing), wanted):
            existing.append(Campaign.objects.create(organisation=organisation, name=f"Bench appeal {n + 1}",
                                                    external_id=f"bench-campaign-{n + 1}").id)
        return existing

    def _donors(self, organisation, wanted: int, rng: random.Random) -> list[str]:
        qs = Donor.objects.for_organisation(organisation).filter(external_id__startswith="bench-")
        have = qs.count()
        if have < wanted:
            now = timezone.now()
            columns = ["id", "organisation_id", "created_at", "updated_at", "donor_type", "first_name", "last_name", "email",
                       "phone", "address_line1", "suburb", "state", "postcode", "country", "external_id", "metadata",
                       "donations_total_cents", "donations_count"]
            with transaction.atomic(), connection.cursor() as cursor:
                with cursor.cursor.copy(f"COPY donations_donor ({', '.join(columns)}) FROM STDIN") as copy:
                    for n in range(have, wanted):
                        suburb, state, postcode = SUBURBS[n % len(SUBURBS)]
                        first, last = rng.choice(FIRST), rng.choice(LAST)
                        copy.write_row((
                            new_id(), organisation.id, now, now, "INDIVIDUAL", first, last,
                            f"donor{n}@bench.example", f"+61 4{n % 100_000_000:08d}", f"{n % 300 + 1} {last} Street",
                            suburb, state, postcode, "AU", f"bench-donor-{n}", "{}", 0, 0,
                        ))
        return list(qs.order_by("external_id").values_list("id", flat=True))

    def _donations(self, organisation, wanted: int, donor_ids: list[str], campaign_ids: list[str], rng: random.Random) -> int:
        have = Donation.objects.for_organisation(organisation).filter(external_id__startswith="bench-").count()
        if have >= wanted:
            return 0
        from compliance.models import RevenueCode

        for code, jurisdiction in CODES:
            RevenueCode.objects.get_or_create(organisation=organisation, code_lower=code.lower(),
                                              defaults={"code": code, "jurisdiction": jurisdiction, "reviewed": True})
        fy_start, _ = financial_year_of(timezone.localdate())
        first_day = dt.date(fy_start.year - 1, 7, 1)
        span = (timezone.localdate() - first_day).days + 1
        now = timezone.now()
        columns = ["id", "organisation_id", "created_at", "updated_at", "donor_id", "campaign_id", "donation_type",
                   "amount_cents", "currency", "donation_date", "source", "status", "payment_method", "reference",
                   "in_kind_category", "in_kind_description", "in_kind_valuation_method", "revenue_code", "jurisdiction",
                   "external_id", "metadata"]
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY donations_donation ({', '.join(columns)}) FROM STDIN") as copy:
                for n in range(have, wanted):
                    code, jurisdiction = CODES[n % len(CODES)]
                    in_kind = n % 50 == 0
                    status = "CONFIRMED" if n % 40 else ("REFUNDED" if n % 80 else "VOIDED")
                    copy.write_row((
                        new_id(), organisation.id, now, now, donor_ids[rng.randrange(len(donor_ids))],
                        campaign_ids[n % len(campaign_ids)] if campaign_ids and n % 3 else None,
                        "IN_KIND" if in_kind else "MONETARY", rng.randrange(500, 50_000), "AUD",
                        first_day + dt.timedelta(days=rng.randrange(span)), "MANUAL" if n % 4 else "STRIPE", status,
                        None if in_kind else METHODS[n % len(METHODS)], f"REF-{n}",
                        "GOODS" if in_kind else None, "Printing and signage" if in_kind else None,
                        "Supplier's list price" if in_kind else None, code, jurisdiction, f"bench-{n}", "{}",
                    ))
            cursor.execute(
                """UPDATE donations_donor d SET donations_total_cents = t.total, donations_count = t.n
                   FROM (SELECT donor_id, SUM(amount_cents) AS total, COUNT(*) AS n FROM donations_donation
                         WHERE organisation_id = %s AND status = 'CONFIRMED' GROUP BY donor_id) t
                   WHERE d.id = t.donor_id""", [organisation.id])
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE donations_donation")
            cursor.execute("ANALYZE donations_donor")
        return wanted - have

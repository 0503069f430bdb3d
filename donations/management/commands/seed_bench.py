"""Fast bench data: donors and donations COPY-loaded straight into PostgreSQL.

    python manage.py seed_bench --org bench --donors 200000 --donations 1000000

Idempotent: tops the organisation up to the requested counts. The rows are
realistic in shape (types, methods, in-kind details, dates over two financial
years, newest first by created_at) and the donors' stored totals are
recomputed from the ledger at the end. Compliance aggregates are not built for
COPY-loaded rows: this data measures speed, not compliance.
"""
from __future__ import annotations

import datetime as dt
import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from donations.models import Donation, Donor
from donations.rollups import rollup_rebuild
from organisations.models import Organisation

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def bench_id(prefix: str, n: int) -> str:
    """Deterministic 24-character ids: 'c' + a 3-letter prefix + base36 counter."""
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(ALPHABET[r])
    return ("c" + prefix + "".join(reversed(out)).rjust(20, "0"))[:24]


class Command(BaseCommand):
    help = __doc__.splitlines()[0]

    def add_arguments(self, parser):
        parser.add_argument("--org", default="bench")
        parser.add_argument("--donors", type=int, default=200_000)
        parser.add_argument("--donations", type=int, default=1_000_000)

    def handle(self, *args, org, donors, donations, **options):
        organisation = Organisation.objects.filter(slug=org, is_sandbox=False).first()
        if organisation is None:
            raise CommandError(f"No live organisation '{org}'.")
        started = time.monotonic()
        have_donors = Donor.objects.for_organisation(organisation).filter(pk__startswith="cbdr").count()
        have_donations = Donation.objects.for_organisation(organisation).filter(pk__startswith="cbdn").count()
        if have_donors >= donors and have_donations >= donations:
            # Rows a baseline INSERTed straight into the table and left behind (bench/records.py now deletes its
            # own): not seeded and never recorded by a service (no audit entry). Left, they piled up run after run
            # on the same donors, and every later run measured longer ledgers on more than the requested data.
            with connection.cursor() as cursor:
                cursor.execute(
                    "DELETE FROM donations_donation d WHERE d.organisation_id = %s AND d.id NOT LIKE 'cbdn%%' AND NOT EXISTS "
                    "(SELECT 1 FROM organisations_auditentry a WHERE a.organisation_id = d.organisation_id AND a.object_type = 'donation' "
                    "AND a.object_id = d.id)",
                    [organisation.id],
                )
                removed = cursor.rowcount
                if removed:
                    cursor.execute("VACUUM ANALYZE donations_donation")
            # The rows other bench scenarios INSERT directly (their baselines) bypass the services: rebuild the rollup.
            # Those rows have no campaign: the CampaignDonor rows stand (rebuilding them each run only left dead rows).
            rows = rollup_rebuild(organisation_id=organisation.id, campaign_donors=False)
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE donations_dailyrollup")
            self.stdout.write(f"seed_bench: {organisation.slug} already holds {have_donors} donors and {have_donations} donations "
                              f"(rollup rebuilt: {rows} rows" + (f"; removed {removed} left by earlier runs' baselines)" if removed else ")"))
            return
        rng = random.Random(42 + have_donations)
        now = dt.datetime.now(dt.timezone.utc)
        with transaction.atomic(), connection.cursor() as cursor:
            if have_donors < donors:
                with cursor.copy(
                    "COPY donations_donor (id, organisation_id, donor_type, first_name, last_name, organisation_name, email, "
                    "postcode, country, metadata, custom_fields, donations_total_cents, donations_count, acknowledgement_default, created_at, updated_at) "
                    "FROM STDIN"
                ) as copy:
                    for n in range(have_donors, donors):
                        kind = "INDIVIDUAL" if n % 10 else "ORGANISATION"
                        stamp = now - dt.timedelta(seconds=(donors - n) * 7)
                        copy.write_row((
                            bench_id("bdr", n), organisation.id, kind,
                            None if kind != "INDIVIDUAL" else f"First{n % 997}",
                            None if kind != "INDIVIDUAL" else f"Last{n % 1009}",
                            f"Company {n}" if kind != "INDIVIDUAL" else None,
                            f"donor{n}@bench.example.org", f"{2000 + n % 7000}", "AU", "{}", "{}", 0, 0, "NEEDS_RECEIPT", stamp, stamp,
                        ))
            if have_donations < donations:
                start = dt.date(2024, 7, 1)
                with cursor.copy(
                    "COPY donations_donation (id, organisation_id, donor_id, donation_type, amount_cents, currency, donation_date, "
                    "source, status, payment_method, reference, in_kind_category, in_kind_description, revenue_code, jurisdiction, "
                    "metadata, custom_fields, refunded_cents, acknowledgement_status, created_at, updated_at) FROM STDIN"
                ) as copy:
                    for n in range(have_donations, donations):
                        in_kind = n % 25 == 0
                        method = None if in_kind else ("CHEQUE", "BANK_TRANSFER", "CARD", "CASH")[n % 4]
                        stamp = now - dt.timedelta(seconds=(donations - n) * 2)
                        copy.write_row((
                            bench_id("bdn", n), organisation.id, bench_id("bdr", rng.randrange(donors)),
                            "IN_KIND" if in_kind else "MONETARY", rng.choice((2_000, 5_000, 10_000, 25_000, 100_000)), "AUD",
                            start + dt.timedelta(days=n % 850), "MANUAL", "CONFIRMED" if n % 50 else "REFUNDED", method,
                            f"{100000 + n}" if method == "CHEQUE" else None, "SERVICES" if in_kind else None,
                            "Bench in-kind services" if in_kind else None, "ADMIN-FUND" if n % 3 else None, "UNREGULATED",
                            "{}", "{}", 0, "DO_NOT_RECEIPT", stamp, stamp,
                        ))
            cursor.execute(
                """UPDATE donations_donor d SET donations_total_cents = COALESCE(s.total, 0), donations_count = COALESCE(s.n, 0),
                          last_donation_date = s.last
                   FROM (SELECT donor_id, SUM(amount_cents) AS total, COUNT(*) AS n, MAX(donation_date) AS last FROM donations_donation
                         WHERE organisation_id = %s AND status = 'CONFIRMED' GROUP BY donor_id) s
                   WHERE d.id = s.donor_id AND d.organisation_id = %s""",
                [organisation.id, organisation.id],
            )
        rollup_rebuild(organisation_id=organisation.id)  # the COPY bypassed the services that keep it
        with connection.cursor() as cursor:
            # VACUUM sets the visibility map, so index-only scans (period totals) work as in production.
            cursor.execute("VACUUM ANALYZE donations_donor")
            cursor.execute("VACUUM ANALYZE donations_donation")
            cursor.execute("VACUUM ANALYZE donations_dailyrollup")
            cursor.execute("VACUUM ANALYZE donations_campaigndonor")
        self.stdout.write(f"seed_bench: {donors} donors, {donations} donations in {organisation.slug} "
                          f"(added {max(0, donors - have_donors)} and {max(0, donations - have_donations)}) in {time.monotonic() - started:.1f} s")

"""The import row of `make bench` (issue 18): rows per second of a whole import.

A CSV of GIFTS gifts (BENCH_IMPORT_GIFTS, default 100,000, the issue's size) from
DONORS donors (BENCH_IMPORT_DONORS, default 30,000: external ID, name, email,
address; BENCH_IMPORT_GIFTS=10000 BENCH_IMPORT_DONORS=3000 is a quicker run in the
same ratio), a third of them coded to an NSW fund so the NSW cap is summed for
them, dated over financial year 2024-25, into a fresh organisation each run (in
the bench database beside the 1M bench gifts: each run's import lands in a table
that already holds the earlier ones). Timed: the upload check, the dry run
(imports.services.import_plan_run) and the commit (import_commit_run, in this
process as one Celery worker runs it: each batch's new donors through
donors_create_many, donor_create's rules batched, and its gifts through
donations_record_many, donation_record's rules batched: each gift's cap check,
audit entry and event, each donor's compliance recompute). The commit is most
of the time, about half of it its SQL (the gifts', donors', audit entries' and
events' inserts and index updates); the dry run of 100,000 rows is about 9 s.
Rows/s = gifts / total seconds,
against the issue's goal of 550 rows/s (100,000 gifts in 3 minutes).
Afterwards the organisation must hold exactly DONORS donors and GIFTS gifts;
anything else counts as errors.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import secrets
import tempfile
import time

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

GIFTS = int(os.environ.get("BENCH_IMPORT_GIFTS", "100000"))
DONORS = int(os.environ.get("BENCH_IMPORT_DONORS", "30000"))
GOAL_ROWS_PER_S = 550.0
GOAL = f"goal: {GOAL_ROWS_PER_S:.0f} rows/s"


def write_file(path: str, gifts: int = GIFTS, donors: int = DONORS, seed: int = 18) -> None:
    rng = random.Random(seed)
    start = dt.date(2024, 7, 1)
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("Gift ID,Donor ID,First name,Last name,Email address,Address,Suburb,State,Postcode,Amount,Date,Reference,Fund\n")
        for n in range(gifts):
            d = n % donors
            day = start + dt.timedelta(days=rng.randrange(365))
            fund = "NSW-FUND" if d % 3 == 0 else ""
            out.write(f"B-{n},D-{d},Given{d},Family{d % 997},donor{d}@bench.example.org,{d} Bench St,Sydney,NSW,{2000 + d % 800},"
                      f"\"${rng.randrange(5, 150):,}.{rng.randrange(100):02d}\",{day:%d/%m/%Y},,{fund}\n")


@baseline(GOAL)
def goal(ctx: BenchContext) -> Measurement:
    return Measurement(GOAL_ROWS_PER_S, unit="rows/s", detail="the issue: 100,000 gifts for 30,000 donors in under 3 minutes")


@scenario(f"import {GIFTS:,} gifts / {DONORS:,} donors", baseline=GOAL, goal=Goal.of("issue 18", ("value", ">=", GOAL_ROWS_PER_S, "rows/s")))
def import_rows(ctx: BenchContext) -> Measurement:
    from compliance.services import revenue_code_create
    from donations.models import Donation, Donor
    from imports import services
    from organisations.services import organisation_create
    from together.actors import Actor

    actor = Actor.system("make bench")
    org = organisation_create(name="Bench import", slug=f"bench-import-{secrets.token_hex(4)}")
    revenue_code_create(organisation=org, actor=actor, code="NSW-FUND", jurisdiction="NSW")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "gifts.csv")
        write_file(path)
        os.environ["IMPORTS_DIR"] = folder
        started = time.monotonic()
        with open(path, "rb") as handle:
            job = services.import_create(organisation=org, actor=actor, file=handle, file_name="gifts.csv")
        uploaded = time.monotonic()
        job = services.import_plan_run(import_id=job.id)
        planned = time.monotonic()
        services.import_commit(organisation=org, actor=actor, import_id=job.id)
        job = services.import_commit_run(import_id=job.id)
        finished = time.monotonic()
    donors = Donor.objects.filter(organisation=org).count()
    gifts = Donation.objects.filter(organisation=org).count()
    errors = abs(donors - DONORS) + abs(gifts - GIFTS) + (job.status != "COMPLETED")
    total = finished - started
    return Measurement(
        GIFTS / total, unit="rows/s", errors=errors,
        detail=(f"{total:.1f} s in all: upload check {uploaded - started:.1f} s, dry run {planned - uploaded:.1f} s, "
                f"commit {finished - planned:.1f} s; {donors:,} donors and {gifts:,} gifts made; plan {job.plan_counts}"),
    )

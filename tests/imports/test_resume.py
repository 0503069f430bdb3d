"""A commit killed mid-way (SIGKILL of the process running it) resumes without duplicating."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.models import Donation, Donor
from imports import services
from imports.models import Import
from tests.imports.helpers import ACTOR, outcomes, upload

ROOT = Path(__file__).resolve().parents[2]
RUNNER = """
import os, sys, time
import django
django.setup()
from imports import services
services.BATCH_ROWS = 5
real = services._commit_batch
def slow(*args, **kwargs):
    real(*args, **kwargs)
    time.sleep(0.15)  # the batch's transaction is still open: a kill here loses this batch, never half of it
services._commit_batch = slow
services.import_commit_run(import_id=sys.argv[1])
"""


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_sigkilled_commit_resumes_without_duplicates(settings, tmp_path):
    from organisations.services import organisation_create

    org = organisation_create(name="Resume org", slug=f"resume-{os.getpid()}-{int(time.time())}")
    lines = ["External ID,First name,Last name,Email,Amount,Date"]
    for n in range(120):
        donor = n % 40
        lines.append(f"R-{n},Don{donor},Or,donor{donor}@example.org,{10 + n},{1 + n % 28:02d}/0{1 + n % 9}/2025")
    job = upload(org, "\n".join(lines) + "\n")
    planned = outcomes(job)
    assert Counter(o for o, _d, _m in planned.values())["CREATE_GIFT"] == 120
    services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    env = dict(os.environ, DATABASE_URL=_database_url(), DJANGO_SETTINGS_MODULE="together.settings",
               IMPORTS_DIR=str(settings.IMPORTS_DIR))
    env.pop("TEST_DATABASE_NAME", None)
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, job.id], cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = Import.objects.get(pk=job.pk).rows_done
            if done >= 30 or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the runner finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    killed_at = Import.objects.get(pk=job.pk)
    assert killed_at.status == "COMMITTING" and 0 < killed_at.rows_done < 120
    gifts_at_kill = Donation.objects.filter(organisation=org).count()
    assert gifts_at_kill == killed_at.rows_done  # whole batches only: each row's gift and its outcome commit together
    # Restart (as a redelivered task would): it continues after the last finished batch.
    services.import_commit_run(import_id=job.id)
    job.refresh_from_db()
    assert job.status == "COMPLETED"
    gifts = Donation.objects.filter(organisation=org)
    assert gifts.count() == 120
    assert len(set(gifts.values_list("external_id", flat=True))) == 120
    assert Donor.objects.filter(organisation=org).count() == 40
    assert outcomes(job) == planned
    # And the whole file once more: nothing new.
    again = upload(org, "\n".join(lines) + "\n")
    assert set(o for o, _d, _m in outcomes(again).values()) == {"DUPLICATE"}


@pytest.mark.django_db
def test_the_sweep_resumes_only_stalled_commits(org):
    import datetime as dt
    from unittest import mock

    from django.utils import timezone

    job = upload(org, "Email,Amount,Date\nann@example.org,10,1/2/2025\n")
    services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    with mock.patch("imports.services.task_send") as send:
        assert services.imports_resume_stalled() == 0
        Import.objects.filter(pk=job.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=5))
        assert services.imports_resume_stalled() == 1
    send.assert_called_once_with("imports.tasks.import_commit_task", job.id)


@pytest.mark.django_db
def test_a_long_commit_reads_each_batch_after_the_last_and_refreshes_statistics_as_it_grows(org, monkeypatch):
    """Batches of 2 and a first refresh after 4 rows: 9 gifts go in 5 batches, each read after the
    last batch's seq; the import rows are analysed at the start, the gifts and donors at 4 and 8 rows."""
    monkeypatch.setattr(services, "BATCH_ROWS", 2)
    monkeypatch.setattr(services, "ANALYZE_FIRST", 4)
    body = "Email,Amount,Date\r\n" + "".join(f"grow{n % 3}@example.org,{n + 1},0{1 + n}/03/2025\r\n" for n in range(9))
    job = upload(org, body)
    services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    with CaptureQueriesContext(connection) as queries:
        services.import_commit_run(import_id=job.id)
    job.refresh_from_db()
    assert job.status == "COMPLETED" and job.result_counts.get("CREATE_GIFT") == 9
    assert Donation.objects.filter(organisation=org).count() == 9
    analyses = [q["sql"].split(" (")[0] for q in queries if q["sql"].startswith("ANALYZE")]
    assert analyses == ['ANALYZE "imports_importrow"', 'ANALYZE "donations_donor"', 'ANALYZE "donations_donation"',
                        'ANALYZE "donations_donor"', 'ANALYZE "donations_donation"']
    batch_reads = [q["sql"] for q in queries if 'FROM "imports_importrow"' in q["sql"] and q["sql"].endswith("LIMIT 2")]
    assert len(batch_reads) == 6  # five batches and the read that finds none
    assert '"imports_importrow"."seq" >' not in batch_reads[0]
    assert all('"imports_importrow"."seq" >' in sql for sql in batch_reads[1:])

"""The dashboard's Reports page and the background XLSX jobs: a report too large
for a request becomes a Celery job with progress, offered for download when
ready, to members of its organisation only."""
from __future__ import annotations

import io
import re

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from organisations.models import Membership
from organisations.session import COOKIE
from reports.models import ExportJob, ExportStatus
from reports.services import export_job_run, report_spec
from tests.reports.conftest import FY_END, FY_START, parse_csv

pytestmark = pytest.mark.django_db
User = get_user_model()


def member_client(organisation, role="VIEWER", name="member"):
    user = User.objects.create_user(username=f"{name}-{organisation.slug}", email=f"{name}@{organisation.slug}.example", password="pw")
    Membership.objects.create(user=user, organisation=organisation.live, role=role)
    client = Client()
    client.force_login(user)
    client.cookies[COOKIE] = organisation.id
    return client


FORM = {"report": "donations", "format": "csv", "date_from": FY_START.isoformat(), "date_to": FY_END.isoformat()}


def test_login_required(books):
    response = Client().get(reverse("reports"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_page_has_the_period_picker(books):
    response = member_client(books.org).get(reverse("reports"))
    assert response.status_code == 200
    html = response.content.decode()
    for name in ("report", "format", "date_from", "date_to", "jurisdiction", "period"):
        assert f'name="{name}"' in html
    for exporter in ("donations", "in-kind-register", "disclosure-return", "campaign-summary", "reconciliation"):
        assert f'value="{exporter}"' in html


def test_page_sits_in_the_dashboard_and_its_dates_show(books):
    """The page has the dashboard's frame (navigation, stylesheet), and the default
    period reaches the date inputs in ISO form (a locale date such as 01/07/2026 is
    dropped by <input type=date>, leaving the fields blank)."""
    html = member_client(books.org).get(reverse("reports")).content.decode()
    assert "<nav" in html and "together.css" in html
    for name in ("date_from", "date_to"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        assert 'type="date"' in tag and re.search(r'value="\d{4}-\d{2}-\d{2}"', tag), tag


def test_a_viewer_downloads_a_csv(books):
    response = member_client(books.org).post(reverse("reports"), FORM)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{books.org.slug}_donations_2025-07-01_2026-06-30.csv"'
    _, rows = parse_csv(b"".join(response.streaming_content))
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range()}


def test_the_sandbox_page_exports_the_sandbox(books):
    response = member_client(books.sandbox).post(reverse("reports"), FORM)
    _, rows = parse_csv(b"".join(response.streaming_content))
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range(books.sandbox)}


def test_an_error_shows_on_the_page(books):
    response = member_client(books.org).post(reverse("reports"), {**FORM, "report": "disclosure-return", "jurisdiction": "QLD"})
    assert response.status_code == 400
    assert "No disclosure threshold applies in QLD" in response.content.decode()


def test_a_large_xlsx_becomes_a_job_with_progress_then_a_download(books, settings, eager_celery, django_capture_on_commit_callbacks):
    settings.REPORTS_XLSX_INLINE_MAX_ROWS = 10
    client = member_client(books.org)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("reports"), {**FORM, "format": "xlsx"})
    assert response.status_code == 202
    job = ExportJob.objects.get(organisation=books.org)
    assert job.status == ExportStatus.COMPLETED and job.progress == 100
    assert job.rows_total == job.rows_done == len(books.in_range())
    assert job.file_name == f"{books.org.slug}_donations_2025-07-01_2026-06-30.xlsx"
    assert (settings.REPORTS_EXPORT_DIR / job.file_path).exists()
    status = client.get(reverse("report-job-status", args=[job.id])).json()
    assert status["status"] == "COMPLETED" and status["progress"] == 100
    assert status["download_url"] == reverse("report-job-download", args=[job.id])
    download = client.get(status["download_url"])
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="{job.file_name}"'
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content)), read_only=True)
    assert len(list(workbook.worksheets[0].iter_rows(values_only=True))) == len(books.in_range()) + 1
    # The page lists it with its progress bar.
    page = client.get(reverse("reports")).content.decode()
    assert f'data-job="{job.id}"' in page and "<progress" in page
    # Members of another organisation, and of the sandbox twin's page, do not see it.
    for stranger in (member_client(books.other_org, name="stranger"), member_client(books.sandbox, name="twin")):
        assert stranger.get(reverse("report-job-status", args=[job.id])).status_code == 404
        assert stranger.get(reverse("report-job-download", args=[job.id])).status_code == 404


def test_job_progress_is_written_while_it_runs(books, monkeypatch):
    from reports import writers

    spec = report_spec(organisation=books.org, name="donations", data={"from": FY_START.isoformat(), "to": FY_END.isoformat()})
    job = ExportJob.objects.create(organisation=books.org, report="donations", format="xlsx", params=spec.params,
                                   file_name=spec.file_name("xlsx"), rows_total=len(books.in_range()))
    seen = []
    real = writers.xlsx_write

    def spy(spec, out, *, progress=None, progress_every=5000):
        def record(done):
            progress(done)
            seen.append(ExportJob.objects.get(pk=job.pk).progress)
        return real(spec, out, progress=record, progress_every=10)

    monkeypatch.setattr(writers, "xlsx_write", spy)
    done = export_job_run(job_id=job.id)
    assert done.status == ExportStatus.COMPLETED
    assert seen and seen == sorted(seen) and 0 < seen[0] < 100
    # A redelivered message does not build it again.
    assert export_job_run(job_id=job.id).completed_at == done.completed_at


def test_a_failed_job_says_why(books):
    job = ExportJob.objects.create(organisation=books.org, report="donations", format="xlsx", params={"from": "garbage"},
                                   file_name="x.xlsx")
    done = export_job_run(job_id=job.id)
    assert done.status == ExportStatus.FAILED and "from" in done.error


def test_exports_past_their_retention_are_deleted_with_their_files(books, settings):
    import datetime as dt

    from django.utils import timezone

    from reports.services import export_jobs_prune

    settings.REPORTS_EXPORT_RETENTION_HOURS = 48
    old = ExportJob.objects.create(organisation=books.org, report="donations", format="xlsx", file_name="old.xlsx",
                                   status=ExportStatus.COMPLETED, file_path=f"{books.org.id}/x/old.xlsx")
    ExportJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=49))
    folder = settings.REPORTS_EXPORT_DIR / books.org.id / old.id
    folder.mkdir(parents=True)
    (folder / "old.xlsx").write_bytes(b"PK")
    fresh = ExportJob.objects.create(organisation=books.org, report="donations", format="xlsx", file_name="new.xlsx")
    assert export_jobs_prune() == 1
    assert not folder.exists()
    assert list(ExportJob.objects.filter(pk__in=[old.pk, fresh.pk]).values_list("pk", flat=True)) == [fresh.pk]

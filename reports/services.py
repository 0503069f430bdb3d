"""Report exports: the one path the API, the admin and the dashboard take.

`report_export` answers a request: CSV always streams from COPY; XLSX is built
in the request up to `REPORTS_XLSX_INLINE_MAX_ROWS` rows, and beyond that the
caller gets an `ExportJob` that a Celery task builds under
`REPORTS_EXPORT_DIR` (var/exports by default) with its progress.
Every export leaves an audit entry (`report.exported`): these files carry
donors' names and addresses.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from organisations.models import Organisation
from organisations.services import audit_record
from reports import writers
from reports.exporters import ReportSpec, exporter_get
from reports.models import ExportFormat, ExportJob, ExportStatus
from together.actors import Actor
from together.celery import task_send
from together.exceptions import NotFound, ValidationFailed

FORMATS = tuple(ExportFormat.values)
# A RUNNING job whose progress has not moved for this long lost its worker: a redelivery restarts it.
STALE_AFTER = dt.timedelta(minutes=10)


def xlsx_inline_max_rows() -> int:
    return int(getattr(settings, "REPORTS_XLSX_INLINE_MAX_ROWS", 100_000))


def export_dir() -> Path:
    return Path(getattr(settings, "REPORTS_EXPORT_DIR", settings.BASE_DIR / "var" / "exports"))


def report_spec(*, organisation: Organisation, name: str, data, restrict: dict | None = None) -> ReportSpec:
    """Validate a report request (`data`: query parameters without `format`)."""
    return exporter_get(name).resolve(organisation=organisation, data=data, restrict=restrict)


def check_format(value: str | None) -> str:
    fmt = (value or "csv").strip().lower()
    if fmt not in FORMATS:
        raise ValidationFailed(f"format: one of {', '.join(FORMATS)}.", param="format")
    return fmt


@dataclass
class Export:
    """What a caller sends back: a stream (CSV), an open file (XLSX), or a job."""

    file_name: str
    content_type: str
    chunks: Iterator[bytes] | None = None
    file: IO[bytes] | None = None
    job: ExportJob | None = None


def _audit(spec: ReportSpec, actor: Actor, fmt: str, *, rows: int | None = None, job: ExportJob | None = None) -> None:
    after = {"report": spec.exporter.name, "format": fmt, "params": spec.params, "file_name": spec.file_name(fmt)}
    if rows is not None:
        after["rows"] = rows
    if spec.restrict:
        after["restricted_to_selection"] = sorted(spec.restrict)
    if job is not None:
        after["export_job_id"] = job.id
    audit_record(organisation=spec.organisation, actor=actor, action="report.exported", object_type="report",
                 object_id=job.id if job else spec.exporter.name, after=after)


def report_export(*, spec: ReportSpec, fmt: str, actor: Actor, allow_job: bool = True) -> Export:
    fmt = check_format(fmt)
    file_name = spec.file_name(fmt)
    if fmt == ExportFormat.CSV:
        chunks = writers.csv_chunks(spec)
        _audit(spec, actor, fmt)
        return Export(file_name=file_name, content_type=writers.CSV_CONTENT_TYPE, chunks=chunks)
    rows = writers.report_row_count(spec)
    limit = xlsx_inline_max_rows()
    if rows > limit:
        if not allow_job or spec.restrict:
            raise ValidationFailed(
                f"format: this XLSX would have {rows:,} rows, more than the {limit:,} built during a request. "
                "Use format=csv (streamed, any size), or ask for the XLSX on the Reports page, which builds it in the background.",
                param="format", reason="too_large_for_xlsx", rows=rows, limit=limit,
            )
        job = export_job_create(spec=spec, fmt=fmt, actor=actor, rows_total=rows)
        return Export(file_name=file_name, content_type=writers.XLSX_CONTENT_TYPE, job=job)
    handle, written = writers.xlsx_tempfile(spec)
    _audit(spec, actor, fmt, rows=written)
    return Export(file_name=file_name, content_type=writers.XLSX_CONTENT_TYPE, file=handle)


# --- export jobs ----------------------------------------------------------------------------------

def export_job_create(*, spec: ReportSpec, fmt: str, actor: Actor, rows_total: int = 0) -> ExportJob:
    if spec.restrict:
        raise ValidationFailed("A background export covers a whole report, not a selection of rows.", param="format")
    user = actor.user if actor.user is not None and getattr(actor.user, "pk", None) else None
    with transaction.atomic():
        job = ExportJob.objects.create(
            organisation=spec.organisation, report=spec.exporter.name, format=check_format(fmt), params=spec.params,
            rows_total=rows_total, file_name=spec.file_name(fmt), created_by=user,
        )
        _audit(spec, actor, fmt, rows=rows_total, job=job)
        transaction.on_commit(lambda: _enqueue(job.id))
    return job


def _enqueue(job_id: str) -> None:
    task_send("reports.tasks.export_job_run_task", job_id)  # by name: reports/tasks.py calls this module


def export_job_run(*, job_id: str) -> ExportJob:
    """Build a job's file. Claims the job (PENDING -> RUNNING) so that a
    redelivered message does not build it twice; progress is written as it goes."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise NotFound("Export job not found.")
        stale = job.status == ExportStatus.RUNNING and job.updated_at < timezone.now() - STALE_AFTER
        if job.status != ExportStatus.PENDING and not stale:
            return job
        job.status, job.started_at = ExportStatus.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at", "updated_at"])
    try:
        spec = report_spec(organisation=job.organisation, name=job.report, data=job.params)
        relative = Path(job.organisation_id) / job.id / job.file_name
        target = export_dir() / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")

        def progress(done: int) -> None:
            ExportJob.objects.filter(pk=job.id).update(rows_done=done, updated_at=timezone.now())

        with open(partial, "wb") as out:
            if job.format == ExportFormat.XLSX:
                rows = writers.xlsx_write(spec, out, progress=progress)
            else:
                for chunk in writers.csv_chunks(spec):
                    out.write(chunk)
                rows = writers.report_row_count(spec)
        os.replace(partial, target)
        ExportJob.objects.filter(pk=job.id).update(
            status=ExportStatus.COMPLETED, rows_done=rows, rows_total=rows, file_path=str(relative),
            file_size=target.stat().st_size, completed_at=timezone.now(), updated_at=timezone.now(),
        )
    except Exception as exc:  # noqa: BLE001 - the job records the failure; the task must not retry a bad report forever
        ExportJob.objects.filter(pk=job.id).update(status=ExportStatus.FAILED, error=str(exc)[:2000], updated_at=timezone.now())
        if not isinstance(exc, (ValidationFailed, NotFound)):
            raise
    job.refresh_from_db()
    return job


def export_job_file(*, job: ExportJob) -> Path:
    if job.status != ExportStatus.COMPLETED or not job.file_path:
        raise NotFound("This export is not ready.")
    path = (export_dir() / job.file_path).resolve()
    if export_dir().resolve() not in path.parents or not path.exists():
        raise NotFound("The export file is no longer available.")
    return path


def export_retention() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "REPORTS_EXPORT_RETENTION_HOURS", 48)))


def export_jobs_prune(*, now: dt.datetime | None = None) -> int:
    """Delete export jobs older than the retention (their files carry donors'
    names and addresses) with their files; returns how many went."""
    import shutil

    cutoff = (now or timezone.now()) - export_retention()
    stale = list(ExportJob.objects.filter(created_at__lt=cutoff).exclude(status=ExportStatus.RUNNING).values_list("id", "organisation_id"))
    root = export_dir().resolve()
    for job_id, organisation_id in stale:
        folder = (root / organisation_id / job_id).resolve()
        if root in folder.parents:
            shutil.rmtree(folder, ignore_errors=True)
    ExportJob.objects.filter(pk__in=[job_id for job_id, _ in stale]).delete()
    return len(stale)

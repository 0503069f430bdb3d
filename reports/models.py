"""Export jobs: a report too large to build inside a request (XLSX over
REPORTS_XLSX_INLINE_MAX_ROWS rows), built by a Celery task with its progress."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from together.models import OrganisationOwned


class ExportStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class ExportJob(OrganisationOwned):
    report = models.CharField(max_length=40)
    format = models.CharField(max_length=4, choices=ExportFormat.choices)
    # The validated query parameters (from, to, filters) the report was asked with.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=255, blank=True)
    # Relative to REPORTS_EXPORT_DIR (var/exports by default).
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="exportjob_org_created")]

    def __str__(self) -> str:
        return f"{self.report}.{self.format} ({self.status})"

    @property
    def progress(self) -> int:
        """Whole percent, 0-100."""
        if self.status == ExportStatus.COMPLETED:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(self.rows_done * 100 / self.rows_total))

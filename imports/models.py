"""Imports of donors and gifts from a CSV or XLSX file.

An `Import` is the uploaded file, its column mapping, its dry run (one
`ImportRow` per data row with the planned outcome) and, once committed, the
job that writes it through the services (each row's final outcome and the ids
it made). `ImportMapping` remembers an organisation's mapping per header set.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models

from together.models import OrganisationOwned


class ImportStatus(models.TextChoices):
    ANALYSING = "ANALYSING"      # the dry run is being computed
    READY = "READY"              # dry run done: nothing stored; staff may commit
    COMMITTING = "COMMITTING"    # the Celery job writes it
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Outcome(models.TextChoices):
    CREATE_DONOR = "CREATE_DONOR"
    MATCH_DONOR = "MATCH_DONOR"
    CREATE_GIFT = "CREATE_GIFT"
    DUPLICATE = "DUPLICATE"
    REFUSED_CAP = "REFUSED_CAP"
    INVALID = "INVALID"


class MatchBy(models.TextChoices):
    EXTERNAL_ID = "external_id"
    EMAIL = "email"
    NAME_ADDRESS = "name_address"


class Import(OrganisationOwned):
    file_name = models.CharField(max_length=255)
    # Relative to IMPORTS_DIR (var/imports by default).
    file_path = models.CharField(max_length=500)
    file_size = models.BigIntegerField(default=0)
    file_format = models.CharField(max_length=4)  # csv | xlsx
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=1, blank=True)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)  # header -> field ("" ignores the column)
    mapping_source = models.CharField(max_length=12, default="suggested")  # suggested | remembered | chosen
    notes = models.JSONField(default=list)  # what was done to read the file (encoding fallback, separator)
    kind = models.CharField(max_length=12, blank=True)  # donors | gifts
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.ANALYSING)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    plan_counts = models.JSONField(default=dict)  # the dry run's counts by outcome
    result_counts = models.JSONField(default=dict)  # the commit's counts by outcome
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Who uploaded and committed it: the services run as them (Actor type, id, label).
    actor = models.JSONField(default=dict)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="import_org_created")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"

    @property
    def progress(self) -> int:
        if self.status == ImportStatus.COMPLETED:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(self.rows_done * 100 / self.rows_total))

    @property
    def can_commit(self) -> bool:
        return self.status == ImportStatus.READY


class ImportRow(models.Model):
    """One data row: the dry run's outcome, then (`done`) the commit's."""

    import_job = models.ForeignKey(Import, on_delete=models.CASCADE, related_name="rows")
    position = models.IntegerField()  # the row's line in the file (the header is line 1)
    seq = models.IntegerField()  # processing order: donor-only rows first, then gifts by date
    donor_outcome = models.CharField(max_length=12, blank=True)
    outcome = models.CharField(max_length=12)
    match_by = models.CharField(max_length=12, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    field = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    room_left_cents = models.BigIntegerField(null=True, blank=True)
    donor_id = models.CharField(max_length=24, blank=True)
    donation_id = models.CharField(max_length=24, blank=True)
    donor_created = models.BooleanField(default=False)
    done = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["import_job", "position"], name="uniq_import_row_position")]
        indexes = [models.Index(fields=["import_job", "done", "seq"], name="importrow_job_done_seq"),
                   models.Index(fields=["import_job", "outcome", "position"], name="importrow_job_outcome")]


class ImportMapping(OrganisationOwned):
    """The mapping last used for a set of headers, offered for the next file with the same headers."""

    header_key = models.CharField(max_length=64)
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "header_key"], name="uniq_import_mapping_headers")]

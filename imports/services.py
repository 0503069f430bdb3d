"""Imports: upload, dry run, commit, result file.

- `import_create` stores the upload, reads its shape (parsing.inspect), picks a
  mapping (remembered for these headers, else suggested) and queues the dry run.
- `import_plan_run` (Celery) is the dry run: every row's outcome, nothing of the
  organisation's records written; `import_remap` re-plans with another mapping.
- `import_commit` queues the commit; `import_commit_run` (Celery) writes the rows
  through donations.services (donors_create_many, donations_record_many: donor_create's
  and donation_record's rules, batched, with their audit, compliance and events),
  gifts in date order, batch by batch. Each batch commits its gifts and
  its rows' outcomes together while holding the import's row lock, so a worker
  killed mid-way leaves whole batches done and a re-run continues after them.
  Matching by external ID, or donor + date + amount + reference, makes a re-run
  of a row (or of the whole file) create nothing new anyway.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Lower
from django.utils import timezone

from compliance import rules
from compliance.models import ComplianceSettings, RevenueCode
from donations.models import Donation, Donor, DonationType
from imports import mapping as mapping_mod
from imports import parsing
from imports.models import Import, ImportMapping, ImportRow, ImportStatus, MatchBy, Outcome
from imports.values import RowData, RowInvalid, address_key, clean_row, gift_key, name_key, postcode_key
from organisations.models import Organisation
from organisations.services import audit_record
from together.actors import Actor
from together.celery import task_send
from compliance.services import CapExceeded
from together.exceptions import ApplicationError, Conflict, InvalidRequest, NotFound

BATCH_ROWS = 250
QUERY_CHUNK = 2000
# An import is a bulk load: PostgreSQL's statistics still describe the tables as they were before it
# (autovacuum's analyze waits for a tenth of a table to change), so an organisation that had few gifts
# looked like one row to the planner, which then read all of the organisation's gifts through the
# organisation index for each batch's duplicate check (170 ms a batch after 100,000 gifts, against 2 ms
# by external ID). The commit refreshes the statistics of the columns its lookups filter on when the rows
# it wrote since the last refresh reach ANALYZE_FIRST and then as many again as were written before
# (10,000, 20,000, 40,000, ...: four refreshes for 100,000 rows, each about half a second on a table of 1M).
ANALYZE_FIRST = 10_000
ANALYZED_FIELDS = ((Donor, ("organisation", "external_id", "postcode")),
                   (Donation, ("organisation", "external_id", "donor")))
# The dry run COPY-loads the import's rows: the commit starts by describing them to the planner, which
# otherwise took a job's not-done rows for a hundred, read all of them (a bitmap scan) and sorted them
# for every batch of 250, not the next 250 in the index's order.
ANALYZED_AT_START = ((ImportRow, ("import_job", "done", "seq")),)
CONFIDENCE_NAME_ADDRESS = 0.95  # same name, postcode and first address line
CONFIDENCE_NAME_POSTCODE = 0.8  # same name and postcode, one such donor, no address to compare
RESULT_COLUMNS = ["outcome", "donor_outcome", "match_by", "match_confidence", "field", "reason", "room_left_cents",
                  "donor_id", "donation_id"]


def imports_dir() -> Path:
    configured = getattr(settings, "IMPORTS_DIR", None) or os.environ.get("IMPORTS_DIR")
    return Path(configured or settings.BASE_DIR / "var" / "imports")


def _actor_json(actor: Actor) -> dict:
    return {"type": actor.type, "id": actor.id, "label": actor.label}


def _actor_of(job: Import) -> Actor:
    data = job.actor or {}
    return Actor(type=data.get("type", "SYSTEM"), id=data.get("id", ""), label=data.get("label", "import"))


# --- upload ---------------------------------------------------------------------------------

def import_create(*, organisation: Organisation, actor: Actor, file, file_name: str, mapping: dict | None = None) -> Import:
    """Store an uploaded file (a Django UploadedFile or any binary file object),
    check it, and queue its dry run. Bad files are InvalidRequest with `reason`."""
    file_name = os.path.basename(file_name or "upload.csv")[:255] or "upload.csv"
    size = getattr(file, "size", None)
    limit = parsing.max_bytes()
    if size is not None and size > limit:
        raise_too_large(size)
    job = Import(organisation=organisation, file_name=file_name, actor=_actor_json(actor))
    if actor.user is not None and getattr(actor.user, "pk", None):
        job.created_by = actor.user
    relative = Path(organisation.id) / job.id / "upload"
    target = imports_dir() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with open(target, "wb") as out:
            chunks = file.chunks() if hasattr(file, "chunks") else iter(lambda: file.read(1024 * 1024), b"")
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    raise_too_large(written)
                out.write(chunk)
        shape = parsing.inspect(target, file_name)
    except Exception:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    job.file_path, job.file_size = str(relative), written
    job.file_format, job.encoding, job.delimiter = shape.file_format, shape.encoding, shape.delimiter
    job.headers, job.notes, job.rows_total = shape.headers, shape.notes, shape.rows
    if mapping:
        job.mapping, job.mapping_source = mapping_mod.check_mapping(shape.headers, mapping), "chosen"
    else:
        remembered = (ImportMapping.objects.for_organisation(organisation)
                      .filter(header_key=mapping_mod.header_key(shape.headers)).values_list("mapping", flat=True).first())
        if remembered:
            by_name = {mapping_mod.normalise_header(h): f for h, f in remembered.items()}
            job.mapping = {h: by_name.get(mapping_mod.normalise_header(h), "") for h in shape.headers}
            job.mapping_source = "remembered"
        else:
            job.mapping, job.mapping_source = mapping_mod.suggest(shape.headers), "suggested"
    _plan_or_fail(job)
    with transaction.atomic():
        job.save(force_insert=True)
        audit_record(organisation=organisation, actor=actor, action="import.uploaded", object_type="import", object_id=job.id,
                     after={"file_name": file_name, "file_size": written, "rows": shape.rows, "format": shape.file_format})
        if job.status == ImportStatus.ANALYSING:
            transaction.on_commit(lambda: task_send("imports.tasks.import_plan_task", job.id))
    return job


def raise_too_large(size: int):
    limit = parsing.max_bytes()
    raise InvalidRequest(f"The file is larger than {limit // (1024 * 1024)} MB; split it into smaller files.",
                         param="file", reason="file_too_large", limit_bytes=limit)


def _plan_or_fail(job: Import) -> None:
    """A mapping that cannot work (no donor column, an amount without a date) waits for staff to change it."""
    try:
        mapping_mod.check_complete(job.mapping)
    except ApplicationError as exc:
        job.status, job.error = ImportStatus.READY, exc.message
        job.plan_counts = {}
        return
    job.status, job.error = ImportStatus.ANALYSING, ""
    job.kind = "gifts" if "amount" in job.mapping.values() else "donors"


def import_get(*, organisation: Organisation, import_id: str) -> Import:
    job = Import.objects.for_organisation(organisation).filter(pk=import_id).first()
    if job is None:
        raise NotFound("Import not found.")
    return job


@transaction.atomic
def import_remap(*, organisation: Organisation, actor: Actor, import_id: str, mapping: dict) -> Import:
    job = Import.objects.for_organisation(organisation).select_for_update().filter(pk=import_id).first()
    if job is None:
        raise NotFound("Import not found.")
    if job.status not in (ImportStatus.READY, ImportStatus.ANALYSING):
        raise Conflict(f"This import is {job.status}: its mapping can no longer change.", param="mapping")
    job.mapping, job.mapping_source = mapping_mod.check_mapping(job.headers, mapping), "chosen"
    mapping_mod.check_complete(job.mapping)
    _plan_or_fail(job)
    job.plan_counts = {}
    job.save()
    ImportRow.objects.filter(import_job=job).delete()
    transaction.on_commit(lambda: task_send("imports.tasks.import_plan_task", job.id))
    return job


def _path(job: Import) -> Path:
    return imports_dir() / job.file_path


def _shape(job: Import) -> parsing.FileShape:
    return parsing.FileShape(file_format=job.file_format, encoding=job.encoding, delimiter=job.delimiter, headers=job.headers)


def _custom_definitions(job: Import) -> dict[str, list[dict]]:
    """The organisation's custom fields by kind, for `custom:<key>` columns and required gift fields."""
    from donations.custom_fields import custom_field_definitions

    return {kind: custom_field_definitions(organisation=job.organisation, applies_to=kind) for kind in ("DONOR", "DONATION")}


def _columns(job: Import) -> dict[str, int]:
    return {name: job.headers.index(header) for header, name in job.mapping.items() if name and header in job.headers}


def _read(job: Import) -> Iterator[RowData | tuple[int, RowInvalid]]:
    columns = _columns(job)
    custom = _custom_definitions(job)
    for position, cells in parsing.data_rows(_path(job), _shape(job)):
        try:
            yield clean_row(position, cells, columns, custom)
        except RowInvalid as exc:
            yield position, exc


# --- matching donors ----------------------------------------------------------------------------

class DonorIndex:
    """Donors known by external ID, email, and name + postcode (+ address).
    A ref is an existing donor's id, or `row:<n>` for one the import creates."""

    def __init__(self):
        self.by_external: dict[str, str] = {}
        self.by_email: dict[str, str] = {}
        self.by_name: dict[tuple, set[str]] = defaultdict(set)
        self.address: dict[str, str] = {}

    def copy(self) -> "DonorIndex":
        other = DonorIndex()
        other.by_external, other.by_email, other.address = dict(self.by_external), dict(self.by_email), dict(self.address)
        other.by_name = defaultdict(set, {key: set(refs) for key, refs in self.by_name.items()})
        return other

    def add(self, ref: str, values: dict) -> None:
        if values.get("external_id"):
            self.by_external.setdefault(values["external_id"], ref)
        if values.get("email"):
            self.by_email.setdefault(values["email"].lower(), ref)
        name, postcode = name_key(values), postcode_key(values)
        if name and postcode:
            self.by_name[(name, postcode)].add(ref)
            self.address[ref] = address_key(values)

    def _found_by_key(self, values: dict) -> bool:
        return bool((values.get("external_id") and values["external_id"] in self.by_external)
                    or (values.get("email") and values["email"].lower() in self.by_email))

    def find(self, values: dict) -> tuple[str, str, float] | None:
        if values.get("external_id") and values["external_id"] in self.by_external:
            return self.by_external[values["external_id"]], MatchBy.EXTERNAL_ID, 1.0
        if values.get("email") and values["email"].lower() in self.by_email:
            return self.by_email[values["email"].lower()], MatchBy.EMAIL, 1.0
        name, postcode = name_key(values), postcode_key(values)
        candidates = sorted(self.by_name.get((name, postcode), ())) if name and postcode else []
        if not candidates:
            return None
        address = address_key(values)
        if address:
            same = [c for c in candidates if self.address.get(c) == address]
            if len(same) == 1:
                return same[0], MatchBy.NAME_ADDRESS, CONFIDENCE_NAME_ADDRESS
            if same or any(self.address.get(c) for c in candidates):
                return None  # another address, or several alike: a new donor rather than a guess
        if len(candidates) == 1:
            return candidates[0], MatchBy.NAME_ADDRESS, CONFIDENCE_NAME_POSTCODE
        return None

    def load(self, organisation: Organisation, rows: list[RowData]) -> None:
        """Existing donors that rows could match: by external ID, then email (chunked IN
        queries), then, for the rows neither found, everyone in their postcodes (`find`
        asks the name only when external ID and email found nobody; a postcode holds
        many donors, so reading them for rows already found was most of a load)."""
        externals = {r.donor["external_id"] for r in rows if r.donor.get("external_id")}
        emails = {r.donor["email"].lower() for r in rows if r.donor.get("email")}
        base = Donor.objects.for_organisation(organisation)
        fields = ("id", "external_id", "email", "first_name", "last_name", "organisation_name", "postcode", "address_line1")
        seen: set[str] = set()

        def take(queryset):
            for values in queryset.values(*fields).order_by("created_at", "id"):
                if values["id"] not in seen:
                    seen.add(values["id"])
                    self.add(values["id"], values)

        for chunk in _chunks(sorted(externals)):
            take(base.filter(external_id__in=chunk))
        for chunk in _chunks(sorted(emails)):
            take(base.alias(email_lower=Lower("email")).filter(email_lower__in=chunk))
        postcodes = {postcode_key(r.donor) for r in rows if postcode_key(r.donor) and name_key(r.donor)
                     and not self._found_by_key(r.donor)}
        for chunk in _chunks(sorted(postcodes)):
            take(base.filter(postcode__in=chunk))


def _chunks(items: list, size: int = QUERY_CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- caps ------------------------------------------------------------------------------------

class Jurisdictions:
    """A revenue code's jurisdiction, read only (the dry run adds no code to the library)."""

    def __init__(self, organisation: Organisation):
        self.organisation = organisation
        default = ComplianceSettings.objects.filter(organisation=organisation).values_list("default_jurisdiction", flat=True).first()
        self.default = default or ComplianceSettings._meta.get_field("default_jurisdiction").default
        self.codes = {c: j for c, j in RevenueCode.objects.for_organisation(organisation).values_list("code_lower", "jurisdiction")}

    def of(self, code: str | None) -> str:
        return self.codes.get(code.lower(), self.default) if code else self.default


class CapBook:
    """Room under each cap as gifts are added in date order: the ledger's counted
    totals of existing donors plus the file's own gifts (compliance.rules does the arithmetic)."""

    def __init__(self):
        self.rules = rules.rules_by_jurisdiction()
        self.ledger: dict[str, list[tuple[str, dt.date, int]]] = defaultdict(list)
        self.added: Counter = Counter()

    def load(self, donor_ids: list[str]) -> None:
        capped = [j for j, rs in self.rules.items() if any(r.cap_cents is not None for r in rs)]
        for chunk in _chunks(sorted(donor_ids)):
            rows = (Donation.objects.filter(rules.COUNTED, donor_id__in=chunk, jurisdiction__in=capped)
                    .values("donor_id", "jurisdiction", "donation_date").annotate(total=rules.counted_sum()))
            for r in rows:
                self.ledger[r["donor_id"]].append((r["jurisdiction"], r["donation_date"], r["total"] or 0))

    def check(self, ref: str, jurisdiction: str, day: dt.date, amount: int) -> dict | None:
        """The tightest cap this gift would break (with what remains), or None; when None, the gift is counted."""
        rooms = []
        for rule in self.rules.get(jurisdiction, ()):
            if rule.cap_cents is None or not rules.applies_on(rule, day):
                continue
            start, end = rules.rule_period(rule, day)
            total = sum(t for j, d, t in self.ledger.get(ref, ()) if j == jurisdiction and start <= d <= end)
            total += self.added[(ref, jurisdiction, rule.id, start)]
            rooms.append(rules.room(rule, day, total))
        refusing = [room for room in rooms if rules.breaks(room, amount)]
        if refusing:
            return rules.tightest(refusing)
        for room in rooms:
            self.added[(ref, jurisdiction, room["rule"].id, room["period"][0])] += amount
        return None


# --- the dry run -----------------------------------------------------------------------------

def _order(rows: list) -> list:
    """Processing order: donor-only and invalid rows in file order, then gifts by date (then line)."""
    def key(item):
        if isinstance(item, RowData) and item.is_gift:
            return (1, item.donation_date, item.position)
        return (0, dt.date.min, item[0] if isinstance(item, tuple) else item.position)
    return sorted(rows, key=key)


class PlannedRow:
    """A row's planned outcome, before it is written (COPY) as an ImportRow."""

    __slots__ = ("position", "seq", "donor_outcome", "outcome", "match_by", "confidence", "field", "reason",
                 "room_left_cents", "donor_id")

    def __init__(self, position: int, outcome: str = "", donor_outcome: str = "", match_by: str = "",
                 confidence: float | None = None, field: str = "", reason: str = "", donor_id: str = ""):
        self.position, self.seq, self.outcome, self.donor_outcome = position, 0, outcome, donor_outcome
        self.match_by, self.confidence, self.field, self.reason = match_by, confidence, field, reason
        self.room_left_cents, self.donor_id = None, donor_id


def plan(*, organisation: Organisation, job: Import) -> list[PlannedRow]:
    """Every row's outcome as a commit would find it now. Reads only."""
    items = _order(list(_read(job)))
    valid = [i for i in items if isinstance(i, RowData)]
    index = DonorIndex()
    index.load(organisation, valid)
    out: list[PlannedRow] = []
    refs: dict[int, tuple] = {}
    for item in items:
        if not isinstance(item, RowData):
            position, exc = item
            out.append(PlannedRow(position, outcome=Outcome.INVALID, field=exc.field, reason=exc.reason))
            continue
        found = index.find(item.donor)
        if found is None:
            ref = f"row:{item.position}"
            index.add(ref, item.donor)
            refs[item.position] = (ref, Outcome.CREATE_DONOR, "", None)
        else:
            refs[item.position] = (found[0], Outcome.MATCH_DONOR, found[1], found[2])
    existing = sorted({r[0] for r in refs.values() if not r[0].startswith("row:")})
    caps = CapBook()
    caps.load(existing)
    jurisdictions = Jurisdictions(organisation)
    gifts = [i for i in valid if i.is_gift]
    known_external = _existing_gift_externals(organisation, [g.gift_external_id for g in gifts if g.gift_external_id])
    known_keys = _existing_gift_keys(organisation, existing, gifts)
    for item in valid:
        ref, donor_outcome, match_by, confidence = refs[item.position]
        row = PlannedRow(item.position, donor_outcome=donor_outcome, match_by=match_by, confidence=confidence,
                         donor_id="" if ref.startswith("row:") else ref)
        out.append(row)
        if not item.is_gift:
            row.outcome = donor_outcome
            continue
        duplicate = _duplicate_reason(item, ref, known_external, known_keys)
        if duplicate:
            row.outcome, row.reason = Outcome.DUPLICATE, duplicate
            continue
        refusal = caps.check(ref, jurisdictions.of(item.revenue_code), item.donation_date, item.amount_cents)
        if refusal is not None:
            _refuse(row, refusal, item)
            continue
        row.outcome = Outcome.CREATE_GIFT
        _remember_gift(item, ref, known_external, known_keys, f"line {item.position} of this file")
    order = {item.position if isinstance(item, RowData) else item[0]: n for n, item in enumerate(items)}
    for row in out:
        row.seq = order[row.position]
    return out


ROW_COLUMNS = ("import_job_id", "position", "seq", "donor_outcome", "outcome", "match_by", "confidence", "field", "reason",
               "room_left_cents", "donor_id", "donation_id", "donor_created", "done")


def _rows_insert(job: Import, rows: list[PlannedRow]) -> None:
    """The plan's rows in one COPY (bulk_create built and bound 100,000 model rows: most of a dry run's time)."""
    table = connection.ops.quote_name(ImportRow._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in ROW_COLUMNS)
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for r in rows:
            copy.write_row((job.pk, r.position, r.seq, str(r.donor_outcome), str(r.outcome), str(r.match_by),
                            r.confidence, r.field, r.reason, r.room_left_cents, r.donor_id, "", False, False))


# What a commit writes back on each row of its batch, with each column's type for unnest().
ROW_OUTCOME_COLUMNS = (("done", "boolean"), ("outcome", "text"), ("donor_outcome", "text"), ("match_by", "text"),
                       ("confidence", "double precision"), ("field", "text"), ("reason", "text"),
                       ("room_left_cents", "bigint"), ("donor_id", "text"), ("donation_id", "text"),
                       ("donor_created", "boolean"))


def _rows_save(rows: list[ImportRow]) -> None:
    """A batch's outcomes in one UPDATE … FROM unnest(one array per column): bulk_update's
    CASE WHEN per row and column took 1.1-2.5 s per 250 rows (a third of a commit's time)."""
    if not rows:
        return
    table = connection.ops.quote_name(ImportRow._meta.db_table)
    names = [name for name, _ in ROW_OUTCOME_COLUMNS]
    sets = ", ".join(f"{connection.ops.quote_name(n)} = v.{connection.ops.quote_name(n)}" for n in names)
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in ROW_OUTCOME_COLUMNS)
    columns = ", ".join(connection.ops.quote_name(n) for n in names)
    params = [[r.pk for r in rows]]
    for name, kind in ROW_OUTCOME_COLUMNS:
        values = [getattr(r, name) for r in rows]
        params.append([None if v is None else str(v) for v in values] if kind == "text" else values)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} AS r SET {sets} FROM unnest(%s::bigint[], {arrays}) AS v(id, {columns}) "
                       f"WHERE r.id = v.id", params)


def _refuse(row: PlannedRow, room: dict, item: RowData) -> None:
    start, end = room["period"]
    row.outcome, row.field, row.room_left_cents = Outcome.REFUSED_CAP, "amount", room["remaining"]
    row.reason = (f"${item.amount_cents / 100:,.2f} would take the donor past the {room['rule'].jurisdiction} cap of "
                  f"${room['cap'] / 100:,.2f} for {start.isoformat()} to {end.isoformat()}: ${room['remaining'] / 100:,.2f} remains.")


def _existing_gift_externals(organisation, externals: list[str]) -> dict[str, str]:
    out = {}
    for chunk in _chunks(sorted(set(externals))):
        for ext, gift_id in Donation.objects.for_organisation(organisation).filter(external_id__in=chunk).values_list("external_id", "id"):
            out.setdefault(ext, f"gift {gift_id}")
    return out


def _existing_gift_keys(organisation, donor_ids: list[str], gifts: list[RowData]) -> dict[tuple, str]:
    out: dict[tuple, str] = {}
    if not gifts or not donor_ids:
        return out
    first = min(g.donation_date for g in gifts)
    last = max(g.donation_date for g in gifts)
    for chunk in _chunks(donor_ids):
        rows = (Donation.objects.for_organisation(organisation)
                .filter(donor_id__in=chunk, donation_date__gte=first, donation_date__lte=last)
                .values_list("id", "donor_id", "donation_date", "amount_cents", "reference"))
        for gift_id, donor_id, day, amount, reference in rows:
            out.setdefault((donor_id, day, amount, (reference or "").strip().lower()), f"gift {gift_id}")
    return out


def _duplicate_reason(item: RowData, ref: str, known_external: dict, known_keys: dict) -> str:
    if item.gift_external_id and item.gift_external_id in known_external:
        return f"Same external ID as {known_external[item.gift_external_id]}."
    if not item.gift_external_id:
        key = gift_key(ref, item)
        if key in known_keys:
            return f"Same donor, date, amount and reference as {known_keys[key]}."
    return ""


def _remember_gift(item: RowData, ref: str, known_external: dict, known_keys: dict, label: str) -> None:
    if item.gift_external_id:
        known_external.setdefault(item.gift_external_id, label)
    known_keys.setdefault(gift_key(ref, item), label)


def _counts(rows) -> dict:
    counts = Counter(r.outcome for r in rows)
    counts.update(f"donor:{r.donor_outcome}" for r in rows if r.donor_outcome)
    return dict(counts)


def import_plan_run(*, import_id: str) -> Import:
    """The dry run (Celery): store each row's planned outcome on the import; nothing else."""
    with transaction.atomic():
        job = Import.objects.select_for_update().filter(pk=import_id).first()
        if job is None or job.status != ImportStatus.ANALYSING:
            return job
        try:
            rows = plan(organisation=job.organisation, job=job)
        except ApplicationError as exc:
            Import.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, error=exc.message, updated_at=timezone.now())
            job.refresh_from_db()
            return job
        ImportRow.objects.filter(import_job=job).delete()
        _rows_insert(job, rows)
        job.plan_counts, job.status, job.rows_total, job.rows_done = _counts(rows), ImportStatus.READY, len(rows), 0
        job.save(update_fields=["plan_counts", "status", "rows_total", "rows_done", "updated_at"])
    return job


# --- commit ----------------------------------------------------------------------------------

@transaction.atomic
def import_commit(*, organisation: Organisation, actor: Actor, import_id: str) -> Import:
    job = Import.objects.for_organisation(organisation).select_for_update().filter(pk=import_id).first()
    if job is None:
        raise NotFound("Import not found.")
    if job.status == ImportStatus.ANALYSING:
        raise Conflict("The dry run is still running: commit when it is READY.")
    if job.status != ImportStatus.READY or job.error:
        raise Conflict(job.error or f"This import is {job.status}; only a READY import is committed.",
                       param="mapping" if job.error else None)
    job.status, job.actor, job.started_at, job.rows_done = ImportStatus.COMMITTING, _actor_json(actor), timezone.now(), 0
    job.save(update_fields=["status", "actor", "started_at", "rows_done", "updated_at"])
    ImportMapping.objects.update_or_create(organisation=organisation, header_key=mapping_mod.header_key(job.headers),
                                           defaults={"headers": job.headers, "mapping": job.mapping})
    audit_record(organisation=organisation, actor=actor, action="import.committed", object_type="import", object_id=job.id,
                 after={"file_name": job.file_name, "rows": job.rows_total, "plan": job.plan_counts})
    transaction.on_commit(lambda: task_send("imports.tasks.import_commit_task", job.id))
    return job


def import_commit_run(*, import_id: str, stop_after_batches: int | None = None) -> Import | None:
    """Write the rows not yet done, batch by batch (each batch one transaction, under
    the import's row lock: two runners never write the same batch). Safe to run again
    at any time: it continues after the last finished batch."""
    job = Import.objects.filter(pk=import_id).first()
    if job is None or job.status != ImportStatus.COMMITTING:
        return job
    organisation, actor = job.organisation, _actor_of(job)
    data: dict[int, RowData] | None = None
    batches = 0
    written, analyze_at = 0, ANALYZE_FIRST
    last_seq = None
    _statistics_refresh(ANALYZED_AT_START)
    while True:
        if written >= analyze_at:
            _statistics_refresh(ANALYZED_FIELDS)
            analyze_at = 2 * written
        with transaction.atomic():
            job = Import.objects.select_for_update().get(pk=import_id)
            if job.status != ImportStatus.COMMITTING:
                return job
            rows = ImportRow.objects.filter(import_job=job, done=False)
            if last_seq is not None:
                # every row up to the last batch's is done: start the index scan after it, not at the
                # done rows' dead index entries (each batch's update leaves them behind)
                rows = rows.filter(seq__gt=last_seq)
            batch = list(rows.order_by("seq")[:BATCH_ROWS])
            if not batch:
                _finish(job)
                return job
            if data is None:
                try:
                    data = {item.position: item for item in _read(job) if isinstance(item, RowData)}
                except (OSError, ApplicationError) as exc:
                    Import.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, updated_at=timezone.now(),
                                                            error=f"The uploaded file can no longer be read: {exc}")
                    return Import.objects.get(pk=job.pk)
            _commit_batch(organisation, actor, job, batch, data)
            # The batch's rows and the progress count commit together (no count of every done row per batch).
            Import.objects.filter(pk=job.pk).update(rows_done=F("rows_done") + len(batch), updated_at=timezone.now())
        batches += 1
        written += len(batch)
        last_seq = batch[-1].seq
        if stop_after_batches is not None and batches >= stop_after_batches:
            return Import.objects.get(pk=import_id)


def _statistics_refresh(tables: tuple) -> None:
    """ANALYZE the columns the import's lookups filter on, in the tables it has grown: between batches,
    not inside one's transaction. It samples the table and takes no lock that inserts wait for."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, fields in tables:
            columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
            cursor.execute(f"ANALYZE {quote(model._meta.db_table)} ({columns})")


STALLED_AFTER = dt.timedelta(minutes=2)


def imports_resume_stalled(*, now: dt.datetime | None = None) -> int:
    """Re-enqueue committing imports with no batch written for STALLED_AFTER (their worker
    died): the job continues after the last whole batch; a runner still alive is not
    harmed (each batch is taken under the import's row lock)."""
    cutoff = (now or timezone.now()) - STALLED_AFTER
    stalled = list(Import.objects.unscoped("celery sweep").filter(status=ImportStatus.COMMITTING, updated_at__lt=cutoff)
                   .values_list("id", flat=True))
    for import_id in stalled:
        task_send("imports.tasks.import_commit_task", import_id)
    return len(stalled)


def _finish(job: Import) -> None:
    counts = _counts(ImportRow.objects.filter(import_job=job).only("outcome", "donor_outcome"))
    Import.objects.filter(pk=job.pk).update(status=ImportStatus.COMPLETED, result_counts=counts, rows_done=job.rows_total,
                                            completed_at=timezone.now(), updated_at=timezone.now())
    job.refresh_from_db()


class _Replan(Exception):
    """A donor the batch could not create was matched by a later row: row by row, that row would have met no donor."""


def _batch_donors(organisation: Organisation, actor: Actor, batch: list[ImportRow], items: list, index: DonorIndex,
                  *, one_by_one: bool) -> dict[int, tuple]:
    """Each row's donor, as creating them row by row finds it: (donor_id, outcome, match_by, confidence) or
    (None, error). The rows that name no known donor create theirs in one donors_create_many, in row order,
    a later row matching an earlier one's new donor. If a donor it refuses was matched by a later row (that
    row would have met no donor and tried its own), the caller redoes the batch `one_by_one`."""
    from donations.services import donors_create_many

    out: dict[int, tuple] = {}
    creating: list[RowData] = []
    for row, item in zip(batch, items):
        if item is None:
            continue
        found = index.find(item.donor)
        if found is None and one_by_one:
            (result,) = donors_create_many(organisation=organisation, actor=actor, donors=[item.donor])
            if result.error is not None:
                out[item.position] = (None, result.error)
                continue
            index.add(result.donor.id, item.donor)
            out[item.position] = (result.donor.id, Outcome.CREATE_DONOR, "", None)
        elif found is None:
            index.add(f"row:{item.position}", item.donor)
            creating.append(item)
            out[item.position] = (f"row:{item.position}", Outcome.CREATE_DONOR, "", None)
        else:
            out[item.position] = (found[0], Outcome.MATCH_DONOR, found[1], found[2])
    if not creating:
        return out
    results = donors_create_many(organisation=organisation, actor=actor, donors=[item.donor for item in creating])
    made = {}
    for item, result in zip(creating, results):
        made[f"row:{item.position}"] = None if result.error is not None else result.donor.id
        if result.error is not None:
            out[item.position] = (None, result.error)
    for position, found in out.items():
        if found[0] is not None and found[0].startswith("row:"):
            if made[found[0]] is None:
                raise _Replan()
            out[position] = (made[found[0]], *found[1:])
    return out


def _commit_batch(organisation: Organisation, actor: Actor, job: Import, batch: list[ImportRow], data: dict[int, RowData]) -> None:
    # The batch's new donors first, in row order, through donors_create_many (donor_create's rules, batched),
    # then the gifts through donations_record_many (donation_record's rules, batched): the rows in order, a
    # run of gifts sent together; a gift that may duplicate one still pending sends the run first, so each
    # row's outcome is what row-by-row recording gives.
    from donations.services import donations_record_many

    items = [data.get(row.position) for row in batch]
    valid = [i for i in items if i is not None]
    index = DonorIndex()
    index.load(organisation, valid)
    matched = sorted({m[0] for m in (index.find(i.donor) for i in valid) if m})
    # Lock the donors this batch may add to, in id order (as donor_merge does), before any gift.
    list(Donor.objects.for_organisation(organisation).select_for_update().filter(pk__in=matched).order_by("id").values_list("id", flat=True))
    try:
        with transaction.atomic():
            donors = _batch_donors(organisation, actor, batch, items, index.copy(), one_by_one=False)
    except _Replan:
        donors = _batch_donors(organisation, actor, batch, items, index, one_by_one=True)
    gifts = [i for i in valid if i.is_gift]
    known_external = _existing_gift_externals(organisation, [g.gift_external_id for g in gifts if g.gift_external_id])
    known_keys = _existing_gift_keys(organisation, matched, gifts)
    pending: list[tuple[ImportRow, RowData]] = []
    pending_external: dict = {}
    pending_keys: dict = {}

    def send() -> None:
        results = donations_record_many(organisation=organisation, actor=actor, gifts=[dict(
            donor_id=row.donor_id, donation_type=DonationType.MONETARY, amount_cents=item.amount_cents,
            donation_date=item.donation_date, payment_method=item.payment_method, reference=item.reference,
            revenue_code=item.revenue_code, notes=item.notes, external_id=item.gift_external_id,
            metadata={"import_id": job.id, "import_line": str(item.position)}, custom_fields=item.custom_fields,
        ) for row, item in pending])
        for (row, item), result in zip(pending, results):
            exc = result.error
            if isinstance(exc, CapExceeded):
                row.outcome, row.field, row.room_left_cents = Outcome.REFUSED_CAP, "amount", exc.extra.get("remaining_cents")
                row.reason = exc.message
            elif exc is not None:
                row.outcome, row.field, row.reason = Outcome.INVALID, exc.param or "", exc.message
            else:
                row.outcome, row.donation_id = Outcome.CREATE_GIFT, result.donation.id
                _remember_gift(item, row.donor_id, known_external, known_keys, f"gift {result.donation.id}")
        pending.clear()
        pending_external.clear()
        pending_keys.clear()

    for row, item in zip(batch, items):
        row.done = True
        if item is None:  # INVALID in the file: nothing to write
            continue
        row.field = row.reason = ""
        row.room_left_cents = None
        row.donation_id = ""
        row.donor_created = False
        donor = donors[item.position]
        if donor[0] is None:
            exc = donor[1]
            row.outcome, row.donor_outcome, row.field, row.reason = Outcome.INVALID, "", exc.param or "donor", exc.message
            continue
        row.donor_id, row.donor_outcome, row.match_by, row.confidence = donor
        row.donor_created = row.donor_outcome == Outcome.CREATE_DONOR
        if not item.is_gift:
            row.outcome = row.donor_outcome
            continue
        if pending and _duplicate_reason(item, row.donor_id, pending_external, pending_keys):
            send()  # its outcome depends on whether the pending one is recorded
        duplicate = _duplicate_reason(item, row.donor_id, known_external, known_keys)
        if duplicate:
            row.outcome, row.reason = Outcome.DUPLICATE, duplicate
            continue
        pending.append((row, item))
        _remember_gift(item, row.donor_id, pending_external, pending_keys, "pending")
    if pending:
        send()
    _tags_add(organisation, actor, batch, items)
    _rows_save(batch)


def _tags_add(organisation: Organisation, actor: Actor, batch: list[ImportRow], items: list) -> None:
    """The rows' Tags on their donors (created or matched), through donations.crm's tag
    service: one donors_tag_bulk per set of names in the batch (a tag the donor carries
    already is left as it is, so a re-run changes nothing)."""
    from donations.crm import donors_tag_bulk

    by_names: dict[tuple, set[str]] = defaultdict(set)
    for row, item in zip(batch, items):
        if item is not None and item.tags and row.donor_outcome in (Outcome.CREATE_DONOR, Outcome.MATCH_DONOR):
            by_names[tuple(item.tags)].add(row.donor_id)
    for names, donor_ids in by_names.items():
        donors_tag_bulk(organisation=organisation, actor=actor, names=list(names),
                        donors=Donor.objects.for_organisation(organisation).filter(pk__in=sorted(donor_ids)))


# --- result file -----------------------------------------------------------------------------

def import_result_chunks(*, job: Import) -> Iterator[bytes]:
    """The input rows with each row's outcome and the ids made (the plan's, before a commit), as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([parsing.neutralise(h) for h in job.headers + RESULT_COLUMNS])
    rows = ImportRow.objects.filter(import_job=job).order_by("position").values_list(
        "position", "outcome", "donor_outcome", "match_by", "confidence", "field", "reason", "room_left_cents", "donor_id",
        "donation_id").iterator(chunk_size=5000)
    current = next(rows, None)
    yield "\ufeff".encode()
    for position, cells in parsing.data_rows(_path(job), _shape(job)):
        while current is not None and current[0] < position:
            current = next(rows, None)
        extra = list(current[1:]) if current is not None and current[0] == position else [""] * len(RESULT_COLUMNS)
        writer.writerow([parsing.neutralise(c) for c in cells] + ["" if v is None else parsing.neutralise(v) for v in extra])
        if buffer.tell() > 256 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def import_result_file_name(job: Import) -> str:
    stem = Path(job.file_name).stem or "import"
    return f"{stem}_result.csv"


def import_rows(*, job: Import, outcome: str | None = None, limit: int = 50) -> list[dict]:
    qs = ImportRow.objects.filter(import_job=job)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return list(qs.order_by("position").values("position", "outcome", "donor_outcome", "match_by", "confidence", "field",
                                              "reason", "room_left_cents", "donor_id", "donation_id")[:limit])

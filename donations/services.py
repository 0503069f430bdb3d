"""Every state change of donors, campaigns and donations.

The API, the dashboard, the admin, imports and Celery tasks all call these.
Each one runs in a transaction, locks what it decides on, writes an audit
entry, and keeps the donor's stored totals equal to its ledger.
"""
from __future__ import annotations

import datetime as dt
import inspect
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Case, Count, F, Max, Q, Value, When
from django.db.models.functions import Lower
from django.utils import timezone

from donations.models import (
    Campaign, CampaignStatus, Donation, DonationType, Donor, DonorMerge, DonorType, InKindCategory,
    PaymentMethod, Source, Status,
)
from compliance.models import REVENUE_CODE_RE
from compliance.rules import COUNTED, counted_sum
from compliance.services import (
    AggregateWrites, donation_compliance_prepare, donor_compliance_recompute, donor_ledgers_read, donor_merge_compliance,
    revenue_code_resolve,
)
from donations.custom_fields import custom_field_definitions, custom_fields_clean
from donations.crm import (
    donors_merge_tags, employees_release, employer_check_type_change, employer_clean, source_fields_clean,
)
from donations.representations import DONOR_FIELDS, DONOR_WRITABLE, render_donor
from donations.rollups import rollup_apply
from donations.selectors import campaign_snapshot, donation_snapshot, donation_snapshot_of, donor_snapshot, donors_with_email
from organisations.models import Organisation
from organisations.services import audit_record
from together.actors import Actor
from together.celery import task_send_batched_on_commit
from together.db import execute_batched, insert_rows, prepared_cursor, write_batch
from together.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from webhooks.events import event_record, events_record

MAX_AMOUNT_CENTS = 10**13
# Every date a gift, refund, deposit or campaign may carry: the API's input fields
# refuse the same range (together/api/fields.py: StrictDateField). Outside it, period
# arithmetic (financial years, caps, due dates) runs off the calendar at years 1 and 9999.
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
# A deposit batch holds at most this many gifts (its control count).
MAX_BATCH_ROWS = 10_000


def check_date(value, param: str) -> None:
    """Refuse a date outside DATE_MIN..DATE_MAX (None passes: required-ness is the caller's)."""
    if value is None:
        return
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationFailed(f"{param} must be a date.", param=param)
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValidationFailed(f"{param} must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}.", param=param)

DONOR_FIELDS_WRITABLE = frozenset(DONOR_WRITABLE)


METADATA_MAX_KEYS, METADATA_MAX_KEY, METADATA_MAX_VALUE = 50, 40, 500


def clean_metadata(value) -> dict:
    """String keys to string values, bounded: at most 50 keys of 1 to 40
    characters, values of at most 500. Enforced here so every path obeys it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("metadata must be an object of string keys to string values.", param="metadata")
    if len(value) > METADATA_MAX_KEYS:
        raise ValidationFailed(f"metadata has at most {METADATA_MAX_KEYS} keys.", param="metadata")
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_MAX_KEY:
            raise ValidationFailed(f"metadata keys are 1 to {METADATA_MAX_KEY} characters.", param="metadata")
        if not isinstance(item, str) or len(item) > METADATA_MAX_VALUE:
            raise ValidationFailed(f"metadata values are strings of at most {METADATA_MAX_VALUE} characters.", param="metadata")
    return dict(value)


# --- donors -------------------------------------------------------------------

def _clean_donor_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - DONOR_FIELDS_WRITABLE
    if unknown:
        raise ValidationFailed(f"Unknown donor field '{sorted(unknown)[0]}'.", param=sorted(unknown)[0])
    out = {}
    for key, value in fields.items():
        if isinstance(value, str):
            value = value.strip() or None
        out[key] = value
    if "email" in out and out["email"]:
        email = out["email"]
        if "@" not in email or email.startswith("@") or email.endswith("@") or " " in email:
            raise ValidationFailed("email is not a valid address.", param="email")
    if "donor_type" in out and out["donor_type"] not in DonorType.values:
        raise ValidationFailed("donor_type must be one of " + ", ".join(DonorType.values) + ".", param="donor_type")
    if "country" in out:
        country = (out["country"] or "AU").upper()
        from donations.countries import ISO_3166_ALPHA2

        if country not in ISO_3166_ALPHA2:
            raise ValidationFailed("country must be an ISO 3166-1 alpha-2 code such as AU.", param="country")
        out["country"] = country
    if "metadata" in out:
        out["metadata"] = clean_metadata(fields["metadata"])
    return out


# Public name for callers that check donor fields before writing (imports' dry run).
donor_fields_clean = _clean_donor_fields


def _email_conflict(organisation: Organisation, email: str | None, exclude_id: str | None = None) -> None:
    if not email:
        return
    existing = donors_with_email(Donor.objects.for_organisation(organisation), email)
    if exclude_id:
        existing = existing.exclude(pk=exclude_id)
    existing_id = existing.values_list("id", flat=True).first()
    if existing_id:
        raise _email_taken(existing_id)


def _has_identity(donor_fields: dict) -> bool:
    return any(donor_fields.get(k) for k in ("email", "first_name", "last_name", "organisation_name", "phone"))


@dataclass
class DonorResult:
    """One donor of donors_create_many: the donor created, or why it was refused (the
    error donor_create would have raised: an email conflict carries the existing id)."""

    donor: Donor | None = None
    error: ApplicationError | None = None


@transaction.atomic
def donor_create(*, organisation: Organisation, actor: Actor, **fields) -> Donor:
    # donors_create_many with one donor, its refusal raised inside the transaction.
    (result,) = _create_many(organisation=organisation, actor=actor, donors=[fields], raise_errors=True)
    return result.donor


def donors_create_many(*, organisation: Organisation, actor: Actor, donors: list[dict]) -> list[DonorResult]:
    """Create many donors (each a dict of donor_create's keyword arguments) in one
    transaction, each by exactly donor_create's rules (donor_create is this with one
    donor), in the order given: a donor whose email an earlier one of the batch takes
    is refused as if that one were already stored. A refused donor writes nothing and
    its result carries the error. One query finds the emails already taken, one
    INSERT writes the accepted donors, one read renders them, and their audit entries
    and `donor.created` events are written together."""
    return _create_many(organisation=organisation, actor=actor, donors=donors, raise_errors=False)


def _donors_with_emails(queryset, emails: list[str]):
    """The donors of `queryset` whose email is one of `emails`, ignoring case as the
    (lower(email), organisation) unique index does (donors_with_email for many)."""
    return queryset.alias(email_lower=Lower("email")).filter(email__isnull=False,
                                                              email_lower__in=[Lower(Value(e)) for e in emails])


def _email_taken(existing_id: str) -> Conflict:
    return Conflict(f"A donor with this email already exists: {existing_id}.", param="email", existing_id=existing_id)


@transaction.atomic
def _create_many(*, organisation: Organisation, actor: Actor, donors: list[dict], raise_errors: bool) -> list[DonorResult]:
    results = [DonorResult() for _ in donors]

    def refuse(index: int, exc: ApplicationError) -> None:
        if raise_errors:
            raise exc
        results[index].error = exc

    # donor_create's order of refusals: its fields, its identity, its email, its employer, its custom fields.
    cleaned: dict[int, dict] = {}
    for index, fields in enumerate(donors):
        try:
            fields = _clean_donor_fields(fields)
            if not _has_identity(fields):
                raise ValidationFailed("A donor needs at least an email, a name, an organisation name or a phone.", param="email")
        except ApplicationError as exc:
            refuse(index, exc)
            continue
        cleaned[index] = fields
    emails = sorted({f["email"] for f in cleaned.values() if f.get("email")})
    taken: dict[str, str] = {}  # lower(email) -> the donor holding it (stored, or earlier in this batch)
    if emails:
        for donor_id, email in (_donors_with_emails(Donor.objects.for_organisation(organisation), emails)
                                .order_by("id").values_list("id", "email")):
            taken.setdefault(email.lower(), donor_id)
    definitions = None
    accepted: list[tuple[int, Donor]] = []
    for index, fields in cleaned.items():
        email = (fields.get("email") or "").lower()
        try:
            if email and email in taken:
                raise _email_taken(taken[email])
            if "employer_id" in fields:
                fields["employer_id"] = employer_clean(organisation=organisation, employer_id=fields["employer_id"],
                                                       donor_type=fields.get("donor_type") or DonorType.INDIVIDUAL)
            if definitions is None:
                definitions = custom_field_definitions(organisation=organisation, applies_to="DONOR")
            fields["custom_fields"] = custom_fields_clean(organisation, "DONOR", fields.get("custom_fields"),
                                                          definitions=definitions)
        except ApplicationError as exc:
            refuse(index, exc)
            continue
        donor = Donor(organisation=organisation, **fields)
        if email:
            taken[email] = donor.id
        accepted.append((index, donor))
    if not accepted:
        return results
    # A donor whose email another transaction stored since the probe (the unique index waits for it) is
    # skipped by the INSERT, found missing by the read, and refused with the conflict it met.
    Donor.objects.bulk_create([donor for _, donor in accepted], ignore_conflicts=True)
    rows = {row["id"]: row for row in Donor.objects.for_organisation(organisation)
            .filter(pk__in=[donor.id for _, donor in accepted]).values(*DONOR_FIELDS)}
    records = []
    lost: dict[str, str] = {}  # a donor the INSERT skipped -> the donor that holds its email
    for index, donor in accepted:
        row = rows.get(donor.id)
        if row is None:
            existing_id = donors_with_email(Donor.objects.for_organisation(organisation), donor.email or "").values_list(
                "id", flat=True).first() if donor.email else None
            if existing_id is None:
                raise IntegrityError(f"Donor {donor.id} was not inserted.")
            lost[donor.id] = existing_id
            refuse(index, _email_taken(existing_id))
            continue
        for name in ("tags", "donations_total_cents", "donations_count", "created_at", "updated_at"):
            setattr(donor, name, row[name])
        records.append({"type": "donor.created", "object_type": "donor", "object_id": donor.id, "after": render_donor(row)})
        results[index].donor = donor
    for result in results:  # a later donor refused for an email a skipped one held: the holder is the winner
        if isinstance(result.error, Conflict) and result.error.extra.get("existing_id") in lost:
            result.error = _email_taken(lost[result.error.extra["existing_id"]])
    events_record(organisation=organisation, actor=actor, records=records)
    return results


def donor_get_for_update(*, organisation: Organisation, donor_id: str, param: str | None = None) -> Donor:
    donor = Donor.objects.for_organisation(organisation).select_for_update().filter(pk=donor_id).first()
    if donor is None:
        if param:
            raise ValidationFailed(f"No donor '{donor_id}' in this organisation.", param=param)
        raise NotFound("Donor not found.")
    return donor


@transaction.atomic
def donor_update(*, organisation: Organisation, actor: Actor, donor_id: str, **changes) -> Donor:
    donor = donor_get_for_update(organisation=organisation, donor_id=donor_id)
    changes = _clean_donor_fields(changes)
    if "custom_fields" in changes:
        changes["custom_fields"] = custom_fields_clean(organisation, "DONOR", changes["custom_fields"], current=donor.custom_fields)
    before = donor_snapshot(donor_id=donor.id)
    if "email" in changes and changes["email"]:
        _email_conflict(organisation, changes["email"], exclude_id=donor.id)
    merged = {k: getattr(donor, k) for k in DONOR_FIELDS_WRITABLE} | changes
    if "donor_type" in changes:
        employer_check_type_change(organisation=organisation, donor=donor, new_type=merged["donor_type"])
    if "employer_id" in changes or ("donor_type" in changes and merged["employer_id"]):
        changes["employer_id"] = employer_clean(organisation=organisation, donor_type=merged["donor_type"],
                                                employer_id=merged["employer_id"], donor_id=donor.id)
    if not _has_identity(merged):
        raise ValidationFailed("A donor needs at least an email, a name, an organisation name or a phone.", param="email")
    for key, value in changes.items():
        setattr(donor, key, value)
    try:
        with transaction.atomic():
            donor.save()
    except IntegrityError:
        _email_conflict(organisation, changes.get("email"), exclude_id=donor.id)
        raise
    event_record(organisation=organisation, actor=actor, type="donor.updated", object_type="donor", object_id=donor.id,
                 before=before, after=donor_snapshot(donor_id=donor.id))
    return donor


@transaction.atomic
def donor_delete(*, organisation: Organisation, actor: Actor, donor_id: str) -> None:
    donor = donor_get_for_update(organisation=organisation, donor_id=donor_id)
    count = Donation.objects.filter(donor=donor).count()
    if count:
        raise Conflict(f"Donor {donor.id} has {count} donation(s) and cannot be deleted; merge it into another donor instead.")
    before = donor_snapshot(donor_id=donor.id)
    employees_release(organisation=organisation, donor_id=donor.id)
    donor.delete()
    event_record(organisation=organisation, actor=actor, type="donor.deleted", object_type="donor", object_id=donor_id, before=before)


def donor_refresh_totals(*, donor_ids: list[str], ledgers: dict | None = None) -> None:
    """Recompute the stored totals of these donors from their ledger (one UPDATE).
    `ledgers`: per donor id, its counted gifts as compliance.services.DonorLedger
    already read them under the donor's lock in this transaction (no SUM then)."""
    if not donor_ids:
        return
    if ledgers and set(donor_ids) <= set(ledgers):  # one UPDATE from the ledgers, one donor or many
        _donor_totals_write(ledgers)
        return
    for donor_id in set(donor_ids):
        ledger = (ledgers or {}).get(donor_id)
        if ledger is not None:
            total, count = ledger.totals()
            last = max((g.day for g in ledger.gifts), default=None)
        else:
            agg = Donation.objects.filter(COUNTED, donor_id=donor_id).aggregate(total=counted_sum(), n=Count("id"),
                                                                                last=Max("donation_date"))
            total, count, last = agg["total"] or 0, agg["n"] or 0, agg["last"]
        # The totals are part of the donor as the API shows it: a change moves updated_at, so sync by updated_at sees it.
        # The last gift's date (the donors list's sort) is not: it alone leaves updated_at as it was.
        Donor.objects.filter(pk=donor_id).exclude(donations_total_cents=total, donations_count=count, last_donation_date=last).update(
            donations_total_cents=total, donations_count=count, last_donation_date=last,
            updated_at=Case(When(Q(donations_total_cents=total, donations_count=count), then=F("updated_at")), default=Value(timezone.now())),
        )


def _donor_totals_write(ledgers: dict) -> None:
    """donor_refresh_totals' UPDATE for many donors at once (a batch of gifts), from their ledgers."""
    ids, totals, counts, lasts = [], [], [], []
    for donor_id, ledger in sorted(ledgers.items()):
        total, count = ledger.totals()
        ids.append(donor_id)
        totals.append(total)
        counts.append(count)
        lasts.append(max((g.day for g in ledger.gifts), default=None))
    if len(ids) == 1:  # scalars: PostgreSQL keeps this statement's generic plan (arrays' it plans on every run)
        execute_batched(_TOTALS_ONE, [timezone.now(), ids[0], totals[0], counts[0], lasts[0]])
    else:
        execute_batched(_TOTALS_MANY, [timezone.now(), ids, totals, counts, lasts])


_TOTALS = (
    f"UPDATE {Donor._meta.db_table} AS d SET donations_total_cents = v.total, donations_count = v.n, last_donation_date = v.last, "
    f"updated_at = CASE WHEN d.donations_total_cents = v.total AND d.donations_count = v.n THEN d.updated_at ELSE %s END "
    f"FROM {{rows}} AS v(id, total, n, last) "
    f"WHERE d.id = v.id AND NOT (d.donations_total_cents = v.total AND d.donations_count = v.n "
    f"AND d.last_donation_date IS NOT DISTINCT FROM v.last)"
)
_TOTALS_ONE = _TOTALS.format(rows="(VALUES (%s::text, %s::bigint, %s::integer, %s::date))")
_TOTALS_MANY = _TOTALS.format(rows="unnest(%s::text[], %s::bigint[], %s::integer[], %s::date[])")


@transaction.atomic
def donor_merge(*, organisation: Organisation, actor: Actor, survivor_id: str, duplicate_id: str) -> Donor:
    """Move everything of `duplicate` to `survivor`, keep an audit record, delete the duplicate."""
    if survivor_id == duplicate_id:
        raise ValidationFailed("A donor cannot be merged into itself.", param="duplicate_id")
    # Lock both rows in a stable order so two crossed merges cannot deadlock.
    locked = {
        d.id: d
        for d in Donor.objects.for_organisation(organisation).select_for_update().filter(pk__in=[survivor_id, duplicate_id]).order_by("id")
    }
    if survivor_id not in locked:
        raise NotFound("Donor not found.")
    if duplicate_id not in locked:
        raise ValidationFailed(f"No donor '{duplicate_id}' in this organisation.", param="duplicate_id")
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    duplicate_before = donor_snapshot(donor_id=duplicate.id)
    survivor_before = donor_snapshot(donor_id=survivor.id)
    moved = list(Donation.objects.filter(donor=duplicate).values_list("id", flat=True))
    Donation.objects.filter(donor=duplicate).update(donor=survivor, updated_at=timezone.now())
    # Fill the survivor's blanks from the duplicate; the survivor's own values win.
    for field in DONOR_FIELDS_WRITABLE - {"metadata", "email", "donor_type"}:
        if not getattr(survivor, field) and getattr(duplicate, field):
            setattr(survivor, field, getattr(duplicate, field))
    survivor.metadata = {**(duplicate.metadata or {}), **(survivor.metadata or {})}
    duplicate_email = duplicate.email
    donor_merge_compliance(organisation=organisation, survivor=survivor, duplicate=duplicate)
    for hook in MERGE_HOOKS:
        hook(organisation=organisation, survivor=survivor, duplicate=duplicate)
    # Earlier merges into the duplicate are audit records too: they follow it, not cascade away.
    DonorMerge.objects.filter(survivor=duplicate).update(survivor=survivor, updated_at=timezone.now())
    # So do the duplicate's checkout links (engage): an unpaid one still pays, a paid one keeps its history.
    duplicate.checkout_links.update(donor=survivor, updated_at=timezone.now())
    duplicate.delete()
    if not survivor.email and duplicate_email:
        survivor.email = duplicate_email
    survivor.save()
    donor_refresh_totals(donor_ids=[survivor.id])
    rollup_apply(organisation_id=organisation.id, donor_ids=[survivor.id])  # its campaigns' donors
    donor_compliance_recompute(organisation=organisation, donor_id=survivor.id, after_the_fact=True)
    DonorMerge.objects.create(
        organisation=organisation, survivor=survivor, duplicate_id_value=duplicate_id,
        duplicate_snapshot=duplicate_before, moved_donation_ids=moved, actor_label=actor.label,
    )
    event_record(organisation=organisation, actor=actor, type="donor.merged", object_type="donor", object_id=survivor.id,
                 before={"survivor": survivor_before, "duplicate": duplicate_before},
                 after=donor_snapshot(donor_id=survivor.id) | {"merged_donation_ids": moved})
    return survivor


# Other apps register functions here to move what points at a duplicate donor
# (called inside donor_merge's transaction, both donors locked).
MERGE_HOOKS: list = [donors_merge_tags]  # tags and employer links (donations.crm)


# --- campaigns ----------------------------------------------------------------

def _clean_campaign(fields: dict, current: Campaign | None = None) -> dict:
    out = {k: (v.strip() or None) if isinstance(v, str) else v for k, v in fields.items()}
    if "name" in out and not out["name"]:
        raise ValidationFailed("A campaign needs a name.", param="name")
    if out.get("goal_cents") is not None and not 0 < out["goal_cents"] <= MAX_AMOUNT_CENTS:
        raise ValidationFailed("goal_cents must be a positive number of cents.", param="goal_cents")
    for name in ("starts_at", "ends_at"):
        check_date(out.get(name), name)
    starts = out.get("starts_at", current.starts_at if current else None)
    ends = out.get("ends_at", current.ends_at if current else None)
    if starts and ends and ends < starts:
        raise ValidationFailed("ends_at must be on or after starts_at.", param="ends_at")
    return out


@transaction.atomic
def campaign_create(*, organisation: Organisation, actor: Actor, **fields) -> Campaign:
    fields = _clean_campaign(fields)
    campaign = Campaign.objects.create(organisation=organisation, **fields)
    event_record(organisation=organisation, actor=actor, type="campaign.created", object_type="campaign",
                 object_id=campaign.id, after=campaign_snapshot(campaign_id=campaign.id))
    return campaign


def _campaign_for_update(organisation: Organisation, campaign_id: str) -> Campaign:
    campaign = Campaign.objects.for_organisation(organisation).select_for_update().filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound("Campaign not found.")
    return campaign


@transaction.atomic
def campaign_update(*, organisation: Organisation, actor: Actor, campaign_id: str, **changes) -> Campaign:
    campaign = _campaign_for_update(organisation, campaign_id)
    changes = _clean_campaign(changes, campaign)
    before = campaign_snapshot(campaign_id=campaign.id)
    for key, value in changes.items():
        setattr(campaign, key, value)
    campaign.save()
    event_record(organisation=organisation, actor=actor, type="campaign.updated", object_type="campaign",
                 object_id=campaign.id, before=before, after=campaign_snapshot(campaign_id=campaign.id))
    return campaign


@transaction.atomic
def campaign_archive(*, organisation: Organisation, actor: Actor, campaign_id: str) -> Campaign:
    campaign = _campaign_for_update(organisation, campaign_id)
    if campaign.status != CampaignStatus.ARCHIVED:
        campaign.status = CampaignStatus.ARCHIVED
        campaign.save(update_fields=["status", "updated_at"])
        event_record(organisation=organisation, actor=actor, type="campaign.archived", object_type="campaign",
                     object_id=campaign.id, after={"status": campaign.status})
    return campaign


# --- donations ----------------------------------------------------------------

def revenue_code_clean(code: Any) -> str | None:
    """A revenue code as every entry path takes it: text, trimmed, blank as none,
    letters, digits and `. _ - : / + @`, at most 100 characters."""
    if code is None:
        return None
    if not isinstance(code, str):
        raise ValidationFailed("revenue_code must be text.", param="revenue_code")
    code = code.strip()
    if not code:
        return None
    if not REVENUE_CODE_RE.fullmatch(code):
        raise ValidationFailed(
            "revenue_code may hold letters, digits and . _ - : / + @, at most 100 characters.", param="revenue_code"
        )
    return code


def _check_donation_shape(values: dict) -> None:
    """The rules tying type, method and in-kind details together."""
    amount = values["amount_cents"]
    if not isinstance(amount, int) or amount <= 0:
        raise ValidationFailed("amount_cents must be a positive integer number of cents.", param="amount_cents")
    if amount > MAX_AMOUNT_CENTS:
        raise ValidationFailed("amount_cents is too large.", param="amount_cents")
    if values["donation_type"] == DonationType.IN_KIND:
        if values.get("payment_method"):
            raise ValidationFailed("payment_method is for MONETARY donations only.", param="payment_method")
        if not values.get("in_kind_category"):
            raise ValidationFailed("in_kind_category is required for an IN_KIND donation.", param="in_kind_category")
        if values["in_kind_category"] not in InKindCategory.values:
            raise ValidationFailed("in_kind_category is not a known category.", param="in_kind_category")
        if not (values.get("in_kind_description") or "").strip():
            raise ValidationFailed("in_kind_description is required for an IN_KIND donation.", param="in_kind_description")
    else:
        for field in ("in_kind_category", "in_kind_description", "in_kind_valuation_method"):
            if values.get(field):
                raise ValidationFailed(f"{field} is only allowed on IN_KIND donations.", param=field)
        if values.get("payment_method") and values["payment_method"] not in PaymentMethod.values:
            raise ValidationFailed("payment_method is not a known method.", param="payment_method")


def revenue_code_adopt(*, organisation: Organisation, code: Any) -> str | None:
    """A code a form, link or plan names: cleaned, and added to the organisation's
    library (unreviewed, default jurisdiction) when first seen (product.md §4)."""
    code = revenue_code_clean(code)
    if code is not None:
        revenue_code_resolve(organisation=organisation, code=code)
    return code


def campaign_for_gift(organisation: Organisation, campaign_id: str | None) -> Campaign | None:
    """The organisation's campaign a new gift, plan or form may name (never an archived one)."""
    if not campaign_id:
        return None
    campaign = Campaign.objects.for_organisation(organisation).filter(pk=campaign_id).first()
    if campaign is None:
        raise ValidationFailed(f"No campaign '{campaign_id}' in this organisation.", param="campaign_id")
    if campaign.status == CampaignStatus.ARCHIVED:
        raise ValidationFailed(f"Campaign {campaign.id} is archived and takes no new gifts.", param="campaign_id", reason="campaign_archived")
    return campaign


# Compliance registers a check here: called inside the transaction, after the
# donor row is locked, with the donation's would-be state (before and after).
DONATION_CHECKS: list = []
DONATION_AFTER_CHANGE: list = []


def _run_checks(*, organisation, donor, before: Donation | None, after: Donation, ledger=None, resolved=None):
    """Compliance's checks, then the registered ones. Returns what compliance read
    under the donor's lock (compliance.services.Prepared) for _after_change.
    `ledger`, `resolved`: a batch's (donation_compliance_prepare)."""
    prepared = donation_compliance_prepare(organisation=organisation, donor=donor, before=before, after=after,
                                           ledger=ledger, resolved=resolved)
    for check in DONATION_CHECKS:
        check(organisation=organisation, donor=donor, before=before, after=after)
    return prepared


def _state(donation: Donation) -> Donation:
    """A copy of a gift's stored fields: its state before a change (checks, rollup)."""
    return Donation(**{f.attname: getattr(donation, f.attname) for f in Donation._meta.concrete_fields})


def _after_change(*, organisation, donor_ids, donation, before: Donation | None, prepared=None) -> None:
    """`before`: the gift's state before the change (None: a new gift).
    `prepared` (a new gift only): the donor's ledger read before the insert, under
    the lock held since; with the gift added it is the ledger now, not read again."""
    ledgers = {}
    if prepared is not None and prepared.ledger is not None and set(donor_ids) == {prepared.ledger.donor_id}:
        ledgers[prepared.ledger.donor_id] = prepared.ledger.with_gift(donation)
    donor_refresh_totals(donor_ids=donor_ids, ledgers=ledgers)
    rollup_apply(organisation_id=organisation.id, changes=[(before, donation)])
    for donor_id in sorted(set(donor_ids)):
        donor_compliance_recompute(organisation=organisation, donor_id=donor_id, ledger=ledgers.get(donor_id),
                                   context=prepared.context if prepared is not None else None)
    for hook in DONATION_AFTER_CHANGE:
        hook(organisation=organisation, donor_ids=donor_ids, donation=donation)
    # Receipts (issue 18): after the commit, the receipts app issues, corrects or
    # withdraws the gift's receipt. By the task's name: donations never imports receipts.
    task_send_batched_on_commit("receipts.tasks.receipt_sync_batch_task", organisation.id, donation.id)


def donation_record(
    *,
    organisation: Organisation,
    actor: Actor,
    donor_id: str,
    donation_type: str,
    amount_cents: int,
    donation_date: dt.date,
    source: str = Source.MANUAL,
    status: str = Status.CONFIRMED,
    campaign_id: str | None = None,
    payment_method: str | None = None,
    reference: str | None = None,
    in_kind_category: str | None = None,
    in_kind_description: str | None = None,
    in_kind_valuation_method: str | None = None,
    revenue_code: str | None = None,
    notes: str | None = None,
    external_id: str | None = None,
    metadata: dict | None = None,
    card: dict | None = None,
    recurring_plan_id: str | None = None,
    recurring_period: dt.date | None = None,
    source_code: str | None = None,
    referrer: str | None = None,
    utm_source: str | None = None,
    utm_medium: str | None = None,
    utm_campaign: str | None = None,
    custom_fields: dict | None = None,
) -> Donation:
    """Record a gift. The donor row is locked first, so compliance checks that
    sum the donor's gifts see every concurrent gift of that donor in order.
    `card` (card gifts only: source STRIPE or CHECKOUT_LINK) holds what Stripe
    says of the money and what the donor typed (CARD_FIELDS). A recurring plan's
    gift names its plan and period (`recurring_plan_id`, `recurring_period`)."""
    gift = {name: value for name, value in locals().items() if name not in ("organisation", "actor")}
    # A refusal is raised inside the batch's transaction: whatever the checks wrote (a new code's library row) rolls back.
    (result,) = _record_many(organisation=organisation, actor=actor, gifts=[gift], raise_errors=True)
    return result.donation


# donation_record's keyword arguments (but organisation and actor) and their defaults (inspect.Parameter.empty: required)
GIFT_ARGUMENTS: dict = {name: p.default for name, p in inspect.signature(donation_record).parameters.items()
                        if name not in ("organisation", "actor")}


@dataclass
class GiftResult:
    """One gift of donations_record_many: the donation recorded, or why it was refused
    (the error donation_record would have raised: a CapExceeded carries the room left)."""

    donation: Donation | None = None
    error: ApplicationError | None = None


def _gift_clean(organisation: Organisation, gift: dict, definitions: list[dict] | None = None) -> dict:
    """A gift's own fields checked, before any lock (donation_record's order of refusals).
    `definitions`: the organisation's gift custom fields, read once for a batch."""
    unknown = set(gift) - set(GIFT_ARGUMENTS)
    if unknown:
        raise TypeError(f"donation_record() got an unexpected keyword argument '{sorted(unknown)[0]}'")
    missing = [name for name, default in GIFT_ARGUMENTS.items() if default is inspect.Parameter.empty and name not in gift]
    if missing:
        raise TypeError(f"donation_record() missing a required keyword argument: '{missing[0]}'")
    gift = {name: gift.get(name, default) for name, default in GIFT_ARGUMENTS.items()}
    donation_type, amount_cents, donation_date = gift["donation_type"], gift["amount_cents"], gift["donation_date"]
    if donation_type not in DonationType.values:
        raise ValidationFailed("donation_type must be MONETARY or IN_KIND.", param="donation_type")
    _check_donation_shape({name: gift[name] for name in (
        "donation_type", "amount_cents", "payment_method", "in_kind_category", "in_kind_description", "in_kind_valuation_method")})
    if donation_date is None:
        raise ValidationFailed("donation_date is required.", param="donation_date")
    check_date(donation_date, "donation_date")
    # Required fields bind what people enter (MANUAL); a card gift's page checked its own.
    gift["custom_fields"] = custom_fields_clean(organisation, "DONATION", gift["custom_fields"],
                                                enforce_required=gift["source"] == Source.MANUAL, definitions=definitions)
    return gift


def _gift_build(organisation: Organisation, donor: Donor, gift: dict) -> Donation:
    """The new Donation (not saved) of a cleaned gift, for its locked donor."""
    g = gift
    campaign = campaign_for_gift(organisation, g["campaign_id"])
    source, card, recurring_plan_id = g["source"], g["card"], g["recurring_plan_id"]
    donation = Donation(
        organisation=organisation, donor=donor, campaign=campaign, donation_type=g["donation_type"],
        amount_cents=g["amount_cents"], currency=organisation.currency, donation_date=g["donation_date"], source=source,
        status=g["status"], payment_method=g["payment_method"] or None, reference=(g["reference"] or "").strip() or None,
        in_kind_category=g["in_kind_category"] or None, in_kind_description=(g["in_kind_description"] or "").strip() or None,
        in_kind_valuation_method=(g["in_kind_valuation_method"] or "").strip() or None,
        revenue_code=revenue_code_clean(g["revenue_code"]), notes=g["notes"] or None, external_id=g["external_id"] or None,
        metadata=clean_metadata(g["metadata"]), **_card_fields(card, source=source),
        recurring_plan_id=recurring_plan_id or None, recurring_period=g["recurring_period"] if recurring_plan_id else None,
        **source_fields_clean({name: g[name] for name in ("source_code", "referrer", "utm_source", "utm_medium", "utm_campaign")}),
        custom_fields=g["custom_fields"],
    )
    return donation


def donations_record_many(*, organisation: Organisation, actor: Actor, gifts: list[dict]) -> list[GiftResult]:
    """Record many gifts (each a dict of donation_record's keyword arguments) in one
    transaction, each by exactly donation_record's rules (donation_record is this with
    one gift). Gifts are checked in the order given: give them in date order, so the
    caps see them as the law does; a refused gift writes nothing and its result
    carries the error. Every donor is locked first (in id order), each donor's ledger
    read once; the accepted gifts are inserted in one statement; each touched donor's
    totals and compliance are recomputed once; one audit entry and `donation.created`
    event per gift, written together."""
    return _record_many(organisation=organisation, actor=actor, gifts=gifts, raise_errors=False)


def _donors_lock(organisation: Organisation, donor_ids: list[str]) -> dict[str, Donor]:
    """Lock these donors of `organisation` (in id order) and return them by id, as
    deferred instances holding their id and organisation only: the checks and the
    gifts need no more (a whole row was a tenth of a create's CPU, the ORM's compile
    of the lock another tenth: one prepared statement instead). An id that is not
    the organisation's donor is not returned."""
    if not donor_ids:
        return {}
    with prepared_cursor() as cursor:
        if len(donor_ids) == 1:  # a scalar: its generic plan is kept (an array's is planned again each time)
            cursor.execute(_DONOR_LOCK_ONE, [organisation.id, donor_ids[0]])
        else:
            cursor.execute(_DONOR_LOCK_MANY, [organisation.id, sorted(donor_ids)])
        rows = cursor.fetchall()
    return {donor_id: Donor.from_db(DEFAULT_DB_ALIAS, ["id", "organisation_id"], (donor_id, org_id)) for donor_id, org_id in rows}


_DONOR_LOCK = f"SELECT id, organisation_id FROM {Donor._meta.db_table} WHERE organisation_id = %s AND id "
_DONOR_LOCK_ONE = _DONOR_LOCK + "= %s FOR UPDATE"
_DONOR_LOCK_MANY = _DONOR_LOCK + "= ANY(%s::text[]) ORDER BY id FOR UPDATE"


def _code_key(code) -> str:
    return (code.strip() if isinstance(code, str) else "").lower()


@transaction.atomic
def _record_many(*, organisation: Organisation, actor: Actor, gifts: list[dict], raise_errors: bool) -> list[GiftResult]:
    results = [GiftResult() for _ in gifts]
    cleaned: dict[int, dict] = {}
    # A batch reads the custom fields' definitions once (from the cache), not once per gift.
    definitions = custom_field_definitions(organisation=organisation, applies_to="DONATION") if len(gifts) > 1 else None
    for index, gift in enumerate(gifts):
        try:
            cleaned[index] = _gift_clean(organisation, gift, definitions)
        except ApplicationError as exc:
            if raise_errors:
                raise
            results[index].error = exc
    wanted = sorted({g["donor_id"] for g in cleaned.values() if isinstance(g["donor_id"], str)})
    donors = _donors_lock(organisation, wanted)
    base = donor_ledgers_read(list(donors)) if donors else {}
    running = dict(base)  # each donor's ledger with the batch's gifts accepted so far
    resolved: dict = {}
    accepted: list[tuple[int, Donation]] = []
    context = None
    for index, gift in cleaned.items():
        # What the checks may write (a code new to the library, a registered check's rows) is undone with a
        # refusal: a savepoint when the checks may write (a code not yet resolved in this batch, registered checks).
        may_write = not raise_errors and (bool(DONATION_CHECKS) or _code_key(gift["revenue_code"]) not in resolved)
        try:
            with transaction.atomic() if may_write else nullcontext():
                donor = donors.get(gift["donor_id"])
                if donor is None:
                    raise ValidationFailed(f"No donor '{gift['donor_id']}' in this organisation.", param="donor_id")
                donation = _gift_build(organisation, donor, gift)
                prepared = _run_checks(organisation=organisation, donor=donor, before=None, after=donation,
                                       ledger=running[donor.id], resolved=resolved)
        except ApplicationError as exc:
            if raise_errors:
                raise
            if may_write:  # the savepoint rolled back: forget what this gift resolved
                resolved.pop(_code_key(gift["revenue_code"]), None)
            results[index].error = exc
            continue
        context = prepared.context
        running[donor.id] = running[donor.id].with_gift(donation)
        accepted.append((index, donation))
    if not accepted:
        return results
    donations = [donation for _, donation in accepted]
    # The gifts, the donors' totals, the rollup, the aggregates and the audit entries with their
    # events go to PostgreSQL as one statement (together.db.write_batch): none reads another's rows.
    with write_batch():
        insert_rows(donations)
        by_donor: dict[str, list[Donation]] = {}
        for donation in donations:
            by_donor.setdefault(donation.donor_id, []).append(donation)
        ledgers = {donor_id: base[donor_id].with_gifts(by_donor[donor_id]) for donor_id in sorted(by_donor)}
        _after_change_many(organisation=organisation, donations=donations, ledgers=ledgers, context=context)
        # Rendered from the rows just written (no re-read), unless a hook may have changed them since.
        records = []
        for index, donation in accepted:
            donation.rendered = (donation_snapshot(donation_id=donation.id) if DONATION_AFTER_CHANGE
                                 else donation_snapshot_of(donation))
            records.append({"type": "donation.created", "object_type": "donation", "object_id": donation.id,
                            "after": donation.rendered})
            results[index].donation = donation
        events_record(organisation=organisation, actor=actor, records=records)
    return results


def _after_change_many(*, organisation, donations: list[Donation], ledgers: dict, context) -> None:
    """_after_change for new gifts: each touched donor's totals and compliance once, from
    its ledger (read under its lock, the new gifts added); the rollup's days once."""
    donor_refresh_totals(donor_ids=list(ledgers), ledgers=ledgers)
    rollup_apply(organisation_id=organisation.id, changes=[(None, d) for d in donations])
    writes = AggregateWrites()  # one INSERT and one UPDATE of aggregates, one donor or many
    for donor_id in sorted(ledgers):
        donor_compliance_recompute(organisation=organisation, donor_id=donor_id, ledger=ledgers[donor_id], context=context,
                                   writes=writes)
    writes.flush()
    for donation in donations:
        for hook in DONATION_AFTER_CHANGE:
            hook(organisation=organisation, donor_ids=[donation.donor_id], donation=donation)
        task_send_batched_on_commit("receipts.tasks.receipt_sync_batch_task", organisation.id, donation.id)


def _donation_for_update(organisation: Organisation, donation_id: str, *, also_donor_id: str | None = None) -> Donation:
    """Lock the gift's donor (and `also_donor_id`, a donor it may move to) and
    then the gift, in one global order (donors by id, then the gift), so gifts
    of one donor are checked one after another and crossed moves cannot
    deadlock. If the gift moved to another donor while we waited, lock again."""
    for _attempt in range(5):
        current = Donation.objects.for_organisation(organisation).filter(pk=donation_id).values_list("donor_id", flat=True).first()
        if current is None:
            raise NotFound("Donation not found.")
        donor_ids = sorted({current, also_donor_id} - {None})
        locked = set(Donor.objects.for_organisation(organisation).select_for_update().filter(pk__in=donor_ids).order_by("id").values_list("id", flat=True))
        donation = Donation.objects.for_organisation(organisation).select_for_update().select_related("donor").get(pk=donation_id)
        if donation.donor_id in locked:
            return donation
    raise Conflict("This donation is being changed by another request; retry.")


DONATION_FIELDS_EDITABLE = {
    "donor_id", "campaign_id", "amount_cents", "donation_date", "payment_method", "reference", "in_kind_category",
    "in_kind_description", "in_kind_valuation_method", "revenue_code", "notes", "external_id", "metadata",
    "source_code", "referrer", "utm_source", "utm_medium", "utm_campaign",
    "custom_fields",
}


@transaction.atomic
def donation_update(*, organisation: Organisation, actor: Actor, donation_id: str, **changes) -> Donation:
    """Edit a manual gift. Source, type and organisation never change; a change
    of money, date, donor or revenue code goes through the compliance checks."""
    unknown = set(changes) - DONATION_FIELDS_EDITABLE
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name} cannot be changed.", param=name)
    if "donation_date" in changes:
        if changes["donation_date"] is None:
            raise ValidationFailed("donation_date cannot be empty.", param="donation_date")
        check_date(changes["donation_date"], "donation_date")
    new_donor_id = changes.get("donor_id") if isinstance(changes.get("donor_id"), str) else None
    donation = _donation_for_update(organisation, donation_id, also_donor_id=new_donor_id)
    donation.guard("edit")
    before_state = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    old_donor_id = donation.donor_id
    if "donor_id" in changes and changes["donor_id"] != donation.donor_id:
        new_donor = donor_get_for_update(organisation=organisation, donor_id=changes["donor_id"], param="donor_id")
        donation.donor = new_donor
    if "campaign_id" in changes:
        if changes["campaign_id"] != donation.campaign_id:
            donation.campaign = campaign_for_gift(organisation, changes["campaign_id"])
    if "revenue_code" in changes:
        changes["revenue_code"] = revenue_code_clean(changes["revenue_code"])
    changes.update(source_fields_clean(changes))
    if "custom_fields" in changes:
        changes["custom_fields"] = custom_fields_clean(organisation, "DONATION", changes["custom_fields"],
                                                       current=donation.custom_fields)
    for key in DONATION_FIELDS_EDITABLE - {"donor_id", "campaign_id"}:
        if key in changes:
            value = changes[key]
            if isinstance(value, str) and key != "metadata":
                value = value.strip() or None
            if key == "metadata":
                value = clean_metadata(value)
            setattr(donation, key, value)
    _check_donation_shape({
        "donation_type": donation.donation_type, "amount_cents": donation.amount_cents,
        "payment_method": donation.payment_method, "in_kind_category": donation.in_kind_category,
        "in_kind_description": donation.in_kind_description,
        "in_kind_valuation_method": donation.in_kind_valuation_method,
    })
    _run_checks(organisation=organisation, donor=donation.donor, before=before_state, after=donation)
    donation.save()
    _after_change(organisation=organisation, donor_ids=[old_donor_id, donation.donor_id], donation=donation, before=before_state)
    event_record(organisation=organisation, actor=actor, type="donation.updated", object_type="donation",
                 object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


@transaction.atomic
def donation_void(*, organisation: Organisation, actor: Actor, donation_id: str, reason: str) -> Donation:
    """Mark a record entered in error as VOIDED. Kept for audit; out of every total."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required to void a donation.", param="reason")
    donation = _donation_for_update(organisation, donation_id)
    donation.guard("void")
    was = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    donation.status = Status.VOIDED
    donation.void_reason = reason
    donation.voided_at = timezone.now()
    donation.save(update_fields=["status", "void_reason", "voided_at", "updated_at"])
    _after_change(organisation=organisation, donor_ids=[donation.donor_id], donation=donation, before=was)
    event_record(organisation=organisation, actor=actor, type="donation.voided", object_type="donation",
                 object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


@transaction.atomic
def donation_refund(*, organisation: Organisation, actor: Actor, donation_id: str, refund_date: dt.date, reason: str,
                    amount_cents: int | None = None) -> Donation:
    """Give a gift's money back.

    A MANUAL gift's money went back outside Together: it is recorded as returned
    in full (REFUNDED, out of totals). A card gift (STRIPE, CHECKOUT_LINK) is
    refunded through Stripe, in full or in part (`amount_cents`, default: all
    that is left): `refunded_cents` grows and the gift stays CONFIRMED, counting
    what was kept, until all of it is back, when it is REFUNDED. A card gift paid
    into a recipient's account by transfer (every card gift; a split part among
    them) has that transfer reversed by the same amount, up to what is left of it."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required to refund a donation.", param="reason")
    donation = _donation_for_update(organisation, donation_id)
    donation.guard("refund")  # Donation._refusal_refund: the one statement of the rule
    check_date(refund_date, "refund_date")
    if refund_date < donation.donation_date:
        raise ValidationFailed("refund_date cannot be before the donation_date.", param="refund_date",
                               reason="before_donation_date")
    left = donation.amount_cents - donation.refunded_cents
    if amount_cents is None:
        amount_cents = left
    elif isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ValidationFailed("amount_cents must be a positive whole number of cents.", param="amount_cents")
    elif amount_cents > left:
        raise ValidationFailed(f"At most {left} cents of this gift can be refunded.", param="amount_cents",
                               reason="exceeds_refundable", refundable_cents=left)
    if donation.source not in CARD_SOURCES and amount_cents != donation.amount_cents:
        raise ValidationFailed("A MANUAL gift is refunded in full; amount_cents, if sent, must be its amount.", param="amount_cents",
                               reason="manual_refund_in_full")
    total = donation.refunded_cents + amount_cents
    if donation.source in CARD_SOURCES:
        _card_refund_through_stripe(organisation=organisation, donation=donation, amount_cents=amount_cents, total_after=total,
                                    reason=reason)
    was = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    _refund_apply(donation, total_cents=total, refund_date=refund_date, reason=reason)
    _after_change(organisation=organisation, donor_ids=[donation.donor_id], donation=donation, before=was)
    event_record(organisation=organisation, actor=actor, type="donation.refunded", object_type="donation",
                 object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


__all__ = [
    "donor_create", "donor_update", "donor_delete", "donor_merge", "donor_refresh_totals",
    "campaign_create", "campaign_update", "campaign_archive",
    "donation_record", "donation_update", "donation_void", "donation_refund",
    "Q",
]


# --- deposit batches ------------------------------------------------------------

@transaction.atomic
def batch_save_draft(*, organisation: Organisation, actor: Actor, batch_id: str | None = None, reference: str,
                     deposit_date: dt.date, control_count: int, control_total_cents: int, rows: list[dict],
                     payment_method: str = PaymentMethod.CHEQUE, notes: str | None = None):
    """Create or replace a DRAFT batch and its rows. Rows are
    `{donor_id, amount_cents, donation_date, reference, campaign_id, revenue_code}`."""
    from donations.models import DepositBatch, DepositBatchRow

    reference = (reference or "").strip()
    if not reference:
        raise ValidationFailed("A deposit reference is required.", param="reference")
    if deposit_date is None:
        raise ValidationFailed("deposit_date is required.", param="deposit_date")
    check_date(deposit_date, "deposit_date")
    if not isinstance(control_count, int) or isinstance(control_count, bool) or not 1 <= control_count <= MAX_BATCH_ROWS:
        raise ValidationFailed(f"control_count must be a whole number from 1 to {MAX_BATCH_ROWS:,}.", param="control_count")
    if (not isinstance(control_total_cents, int) or isinstance(control_total_cents, bool)
            or not 1 <= control_total_cents <= MAX_AMOUNT_CENTS * MAX_BATCH_ROWS):
        raise ValidationFailed("control_total_cents must be a positive number of cents, at most "
                               f"{MAX_AMOUNT_CENTS * MAX_BATCH_ROWS:,}.", param="control_total_cents")
    if len(rows) > MAX_BATCH_ROWS:
        raise ValidationFailed(f"A batch holds at most {MAX_BATCH_ROWS:,} gifts.", param="rows")
    if payment_method not in PaymentMethod.values:
        raise ValidationFailed("payment_method is not a known method.", param="payment_method")
    if batch_id:
        batch = DepositBatch.objects.for_organisation(organisation).select_for_update().filter(pk=batch_id).first()
        if batch is None:
            raise NotFound("Batch not found.")
        batch.guard("edit")
    else:
        batch = DepositBatch(organisation=organisation)
    batch.reference, batch.deposit_date, batch.control_count = reference, deposit_date, control_count
    batch.control_total_cents, batch.payment_method, batch.notes = control_total_cents, payment_method, notes or None
    batch.save()
    batch.rows.all().delete()
    donors = set(Donor.objects.for_organisation(organisation).filter(pk__in=[r.get("donor_id") for r in rows]).values_list("id", flat=True))
    objs = []
    for index, row in enumerate(rows):
        if row.get("donor_id") not in donors:
            raise ValidationFailed(f"Row {index + 1}: choose a donor of this organisation.", param=f"rows[{index}].donor_id")
        amount = row.get("amount_cents")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise ValidationFailed(f"Row {index + 1}: the amount must be positive.", param=f"rows[{index}].amount_cents")
        if amount > MAX_AMOUNT_CENTS:
            raise ValidationFailed(f"Row {index + 1}: the amount is too large.", param=f"rows[{index}].amount_cents")
        try:
            check_date(row.get("donation_date"), "donation_date")
        except ValidationFailed as exc:
            raise ValidationFailed(f"Row {index + 1}: {exc.message}", param=f"rows[{index}].donation_date") from None
        campaign_id = row.get("campaign_id") or None
        if campaign_id and not Campaign.objects.for_organisation(organisation).filter(pk=campaign_id).exists():
            raise ValidationFailed(f"Row {index + 1}: no such campaign.", param=f"rows[{index}].campaign_id")
        objs.append(DepositBatchRow(
            batch=batch, position=index, donor_id=row["donor_id"], amount_cents=amount,
            donation_date=row.get("donation_date") or deposit_date, reference=(row.get("reference") or "").strip() or None,
            campaign_id=campaign_id, revenue_code=revenue_code_clean(row.get("revenue_code")),
        ))
    DepositBatchRow.objects.bulk_create(objs)
    audit_record(organisation=organisation, actor=actor, action="deposit_batch.saved", object_type="deposit_batch", object_id=batch.id,
                 after={"reference": batch.reference, "rows": len(objs), "control_count": control_count,
                        "control_total_cents": control_total_cents})
    return batch


@transaction.atomic
def batch_post(*, organisation: Organisation, actor: Actor, batch_id: str):
    """Post a DRAFT batch: only when its rows match the control totals, and
    atomically: every row becomes a donation through donation_record (and so
    through the compliance checks), or none does."""
    from donations.models import BatchStatus, DepositBatch

    batch = DepositBatch.objects.for_organisation(organisation).select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound("Batch not found.")
    batch.guard("post")
    rows = list(batch.rows.all())
    count, total = len(rows), sum(r.amount_cents for r in rows)
    if count != batch.control_count:
        raise ValidationFailed(f"The batch has {count} row(s) but the control count is {batch.control_count}.", param="control_count",
                               reason="batch_mismatch")
    if total != batch.control_total_cents:
        raise ValidationFailed(
            f"The rows add up to ${total / 100:,.2f} but the control total is ${batch.control_total_cents / 100:,.2f}.",
            param="control_total_cents", reason="batch_mismatch",
        )
    for index, row in enumerate(rows):
        try:
            donation = donation_record(
                organisation=organisation, actor=actor, donor_id=row.donor_id, donation_type=DonationType.MONETARY,
                amount_cents=row.amount_cents, donation_date=row.donation_date, payment_method=batch.payment_method,
                reference=row.reference, campaign_id=row.campaign_id, revenue_code=row.revenue_code,
                metadata={"deposit_batch_id": batch.id},
            )
        except ValidationFailed as exc:
            raise ValidationFailed(f"Row {index + 1}: {exc.message}", param=f"rows[{index}].{exc.param or 'amount_cents'}", **exc.extra) from exc
        row.donation = donation
        row.save(update_fields=["donation"])
    batch.status = BatchStatus.POSTED
    batch.posted_at = timezone.now()
    batch.save(update_fields=["status", "posted_at", "updated_at"])
    audit_record(organisation=organisation, actor=actor, action="deposit_batch.posted", object_type="deposit_batch", object_id=batch.id,
                 after={"rows": count, "total_cents": total})
    return batch


# --- use cases spanning two services ------------------------------------------------

@transaction.atomic
def donation_record_with_donor(*, organisation: Organisation, actor: Actor, donor_id: str | None = None,
                               new_donor: dict | None = None, **fields) -> Donation:
    """Record a gift from an existing donor (`donor_id`) or from a donor created
    with it (`new_donor`: donor_create's fields): both or neither are stored."""
    if new_donor is not None:
        donor_id = donor_create(organisation=organisation, actor=actor, **new_donor).id
    return donation_record(organisation=organisation, actor=actor, donor_id=donor_id, **fields)


@dataclass(frozen=True)
class BatchSubmitted:
    batch: Any
    posted: bool
    post_refusal: ApplicationError | None = None


def batch_submit(*, organisation: Organisation, actor: Actor, post: bool = False, **draft) -> BatchSubmitted:
    """Save a deposit batch as a draft (batch_save_draft's arguments) and, when
    `post`, post it. The draft is kept even when posting is refused: the refusal
    comes back in `post_refusal` for the person to fix the rows."""
    batch = batch_save_draft(organisation=organisation, actor=actor, **draft)
    if not post:
        return BatchSubmitted(batch=batch, posted=False)
    try:
        batch = batch_post(organisation=organisation, actor=actor, batch_id=batch.id)
    except ApplicationError as exc:
        return BatchSubmitted(batch=batch, posted=False, post_refusal=exc)
    return BatchSubmitted(batch=batch, posted=True)


# --- card gifts (issue 16): what Stripe says of the money ---------------------------------
#
# The payments app records card gifts through donation_record (with `card`) and
# keeps them in step with Stripe through the functions below; donations never
# imports payments: refunds call Stripe through together.stripe_gateway.

CARD_SOURCES = (Source.STRIPE, Source.CHECKOUT_LINK)
CARD_FIELDS = frozenset({
    "stripe_payment_intent_id", "stripe_charge_id", "stripe_balance_transaction_id", "stripe_transfer_id",
    "fee_cents", "net_cents", "consent_text", "consent_given", "donor_snapshot",
})


def _card_fields(card: dict | None, *, source: str) -> dict:
    if not card:
        return {}
    if source not in CARD_SOURCES:
        raise ValidationFailed("Card details belong to STRIPE and CHECKOUT_LINK gifts only.", param="source")
    unknown = set(card) - CARD_FIELDS
    if unknown:
        raise ValidationFailed(f"Unknown card field '{sorted(unknown)[0]}'.", param=sorted(unknown)[0])
    return dict(card)


def _card_refund_through_stripe(*, organisation: Organisation, donation: Donation, amount_cents: int, total_after: int,
                                reason: str) -> None:
    """Refund `amount_cents` of a card gift's charge, and take the same back from the
    recipient's account (its transfer), both idempotent by the refunded total reached."""
    from together import stripe_gateway

    if not (donation.stripe_charge_id or donation.stripe_payment_intent_id):
        raise ValidationFailed("This card gift has no Stripe charge to refund.", param="source")
    if donation.stripe_transfer_id:
        transfer = stripe_gateway.to_dict(stripe_gateway.transfer_retrieve(organisation, transfer_id=donation.stripe_transfer_id))
        transfer_left = int(transfer["amount"]) - int(transfer.get("amount_reversed") or 0)
        reverse = min(amount_cents, transfer_left)
        if reverse > 0:
            stripe_gateway.transfer_reverse(organisation, transfer_id=donation.stripe_transfer_id, amount_cents=reverse,
                                            idempotency_key=f"reversal:{donation.id}:{total_after}",
                                            metadata={"donation_id": donation.id})
    stripe_gateway.refund(
        organisation,
        charge_id=donation.stripe_charge_id or None,
        payment_intent_id=None if donation.stripe_charge_id else donation.stripe_payment_intent_id,
        amount_cents=amount_cents, idempotency_key=f"refund:{donation.id}:{total_after}",
        metadata={"donation_id": donation.id, "organisation_id": organisation.id, "reason": reason[:450]},
    )


def _refund_apply(donation: Donation, *, total_cents: int, refund_date: dt.date | None, reason: str) -> None:
    """`refunded_cents` becomes `total_cents`; all of it back → REFUNDED."""
    donation.refunded_cents = min(total_cents, donation.amount_cents)
    donation.refund_date = refund_date or timezone.localdate()
    donation.refund_reason = reason
    fields = ["refunded_cents", "refund_date", "refund_reason", "updated_at"]
    if donation.refunded_cents >= donation.amount_cents:
        donation.status = Status.REFUNDED
        donation.refunded_at = timezone.now()
        fields += ["status", "refunded_at"]
    donation.save(update_fields=fields)


@transaction.atomic
def donation_refund_sync(*, organisation: Organisation, actor: Actor, donation_id: str, refunded_cents: int,
                         reason: str) -> Donation:
    """Stripe says `refunded_cents` of this card gift went back (a refund made in
    Stripe, or a lost dispute): record it, forward only (never less than already
    recorded). No call to Stripe."""
    donation = _donation_for_update(organisation, donation_id)
    if donation.source not in CARD_SOURCES:
        raise ValidationFailed("Only card gifts are refunded by Stripe.", param="source")
    target = min(int(refunded_cents), donation.amount_cents)
    if donation.status != Status.CONFIRMED or target <= donation.refunded_cents:
        return donation
    was = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    _refund_apply(donation, total_cents=target, refund_date=timezone.localdate(), reason=reason)
    _after_change(organisation=organisation, donor_ids=[donation.donor_id], donation=donation, before=was)
    event_record(organisation=organisation, actor=actor, type="donation.refunded", object_type="donation",
                 object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


@transaction.atomic
def donation_payment_settle(*, organisation: Organisation, actor: Actor, donation_id: str, status: str,
                            card: dict | None = None, reason: str | None = None) -> Donation:
    """A PENDING card gift (BECS, PayTo) settles: CONFIRMED once the money is in,
    through the same compliance checks as a new gift (a cap refuses it), or FAILED
    when the bank rejects it. `card` updates what Stripe says of the money."""
    if status not in (Status.CONFIRMED, Status.FAILED):
        raise ValidationFailed("A pending gift settles as CONFIRMED or FAILED.", param="status")
    donation = _donation_for_update(organisation, donation_id)
    # A recurring plan's expected standing-order gift (MANUAL) is settled by staff the same way.
    if donation.source not in CARD_SOURCES and not (donation.source == Source.MANUAL and donation.recurring_plan_id):
        raise ValidationFailed("Only card gifts settle through Stripe.", param="source")
    if donation.status == status:
        return donation
    if donation.status != Status.PENDING:
        raise ValidationFailed(f"Only a PENDING gift settles; this one is {donation.status}.", param="status")
    before_state = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    for key, value in _card_fields(card, source=donation.source).items():
        setattr(donation, key, value)
    donation.status = status
    if reason:
        donation.notes = (f"{donation.notes}\n{reason}" if donation.notes else reason)[:5000]
    _run_checks(organisation=organisation, donor=donation.donor, before=before_state, after=donation)
    donation.save()
    _after_change(organisation=organisation, donor_ids=[donation.donor_id], donation=donation, before=before_state)
    event_record(organisation=organisation, actor=actor, type="donation.updated", object_type="donation",
                 object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


@transaction.atomic
def donation_dispute_sync(*, organisation: Organisation, actor: Actor, donation_id: str, dispute_status: str,
                          lost: bool = False) -> Donation:
    """Stripe opened or closed a dispute on this card gift's charge. A lost dispute
    took the money back: the gift is REFUNDED in full."""
    donation = _donation_for_update(organisation, donation_id)
    if donation.source not in CARD_SOURCES:
        raise ValidationFailed("Only card gifts are disputed through Stripe.", param="source")
    dispute_status = (dispute_status or "")[:30] or None
    refund = lost and donation.status == Status.CONFIRMED and donation.refunded_cents < donation.amount_cents
    if donation.dispute_status == dispute_status and not refund:
        return donation
    was = _state(donation)
    before = donation_snapshot(donation_id=donation.id)
    donation.dispute_status = dispute_status
    donation.save(update_fields=["dispute_status", "updated_at"])
    if refund:
        _refund_apply(donation, total_cents=donation.amount_cents, refund_date=timezone.localdate(),
                      reason="Dispute lost: the card issuer returned the money to the donor.")
        _after_change(organisation=organisation, donor_ids=[donation.donor_id], donation=donation, before=was)
    event_record(organisation=organisation, actor=actor, type="donation.refunded" if refund else "donation.updated",
                 object_type="donation", object_id=donation.id, before=before, after=donation_snapshot(donation_id=donation.id))
    return donation


def donation_stripe_link(*, organisation: Organisation, donation_ids: list[str], stripe_transfer_id: str | None = None,
                         stripe_payout_id: str | None = None) -> int:
    """Stripe bookkeeping on card gifts, no change to the gift itself: the transfer
    that paid it into its recipient's account, the payout that took it to the bank."""
    changes = {k: v for k, v in (("stripe_transfer_id", stripe_transfer_id), ("stripe_payout_id", stripe_payout_id)) if v}
    if not changes or not donation_ids:
        return 0
    return (Donation.objects.for_organisation(organisation).filter(pk__in=donation_ids, source__in=CARD_SOURCES)
            .update(**changes, updated_at=timezone.now()))

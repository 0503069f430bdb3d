"""Every state change of receipts (issue 18).

How a gift gets its receipt: donations.services enqueues
`receipts.tasks.receipt_sync_batch_task` by name after the commit of every change
to a gift, one message per transaction (donations never imports receipts); a
sweep catches a lost message. `receipt_sync` then locks the gift,
compares it with its standing receipt and does what is due, in one transaction:

- a CONFIRMED gift with money kept and no receipt gets one (ON_RECORD mode; in
  BATCH mode it waits for a bulk run), unless it, or its donor by default, says
  DO_NOT_RECEIPT;
- a receipted gift whose amount (less refunds), date, donor or kind changed has
  its receipt withdrawn and a new number issued, the old one pointing at it;
- a receipted gift that is voided, fully refunded or no longer confirmed has its
  receipt withdrawn, with the reason.

Numbers come from the organisation's counter row, locked FOR UPDATE in the
issuing transaction: consecutive, never reused, and a rolled-back issue gives
its number back (no gaps). A receipt, once issued, is never changed: its PDF and
everything it states are stored with it; only its status moves to WITHDRAWN.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial

from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from compliance.rules import financial_year_starting
from donations.models import Acknowledgement, Donation, DonationType, Donor, InKindCategory, PaymentMethod, Status
from organisations.models import Organisation
from organisations.services import audit_record
from receipts.abn import abn_format, abn_is_valid, abn_normalise
from receipts.models import (
    Deductibility, Receipt, ReceiptCounter, ReceiptingMode, ReceiptKind, ReceiptRun, ReceiptSettings, ReceiptStatus,
    RunStatus,
)
from receipts.representations import render_receipt
from together.actors import Actor
from together.celery import task_send
from together.exceptions import NotFound, ValidationFailed
from webhooks.events import event_record

RECEIPTS_ACTOR = "receipts"
# How a sync may issue a missing receipt: AUTO (after a gift changed: ON_RECORD
# mode only, opt-outs respected), BATCH (a bulk run: any mode, opt-outs
# respected), EXPLICIT (staff issue this gift's receipt: opt-outs overridden).
AUTO, BATCH, EXPLICIT = "AUTO", "BATCH", "EXPLICIT"


def render_blocks(*args, **kwargs) -> bytes:
    """receipts.pdf, imported on first use: ReportLab stays out of every web and
    worker process that never renders a PDF (about 8 MB of resident memory)."""
    from receipts.pdf import render_blocks as render

    return render(*args, **kwargs)


# --- settings ------------------------------------------------------------------------------

SETTINGS_FIELDS = ("legal_name", "fund_name", "abn", "address", "signatory_name", "signatory_title", "wording",
                   "deductibility", "mode", "email_subject", "email_body")


def receipt_settings_get(*, organisation: Organisation) -> ReceiptSettings | None:
    return ReceiptSettings.objects.for_organisation(organisation).first()


@transaction.atomic
def receipt_settings_save(*, organisation: Organisation, actor: Actor, **fields) -> ReceiptSettings:
    """Create or change the organisation's receipt settings. Receipts already
    issued keep what they stated; the next ones state the new settings."""
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name} is not a receipt setting.", param=name)
    current = ReceiptSettings.objects.for_organisation(organisation).select_for_update().first()
    settings = current or ReceiptSettings(organisation=organisation)
    before = {f: getattr(current, f) for f in SETTINGS_FIELDS} if current else None
    for key, value in fields.items():
        setattr(settings, key, (value or "").strip() if isinstance(value, str) or value is None else value)
    settings.abn = abn_normalise(settings.abn)
    if not settings.legal_name:
        raise ValidationFailed("The legal name is required: every receipt states it.", param="legal_name")
    if settings.abn and not abn_is_valid(settings.abn):
        raise ValidationFailed("This is not a valid ABN: 11 digits whose checksum the ABR's method accepts.", param="abn")
    if settings.deductibility == Deductibility.DGR and not settings.abn:
        raise ValidationFailed("A deductible gift recipient's receipts must state its ABN.", param="abn")
    if settings.deductibility not in Deductibility.values:
        raise ValidationFailed("Choose NONE, DGR or POLITICAL.", param="deductibility")
    if settings.mode not in ReceiptingMode.values:
        raise ValidationFailed("Choose ON_RECORD or BATCH.", param="mode")
    settings.save()
    ReceiptCounter.objects.bulk_create([ReceiptCounter(organisation=organisation)], ignore_conflicts=True)
    audit_record(organisation=organisation, actor=actor, action="receipt_settings.saved", object_type="receipt_settings",
                 object_id=settings.id, before=before, after={f: getattr(settings, f) for f in SETTINGS_FIELDS})
    return settings


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def issuer_snapshot(settings: ReceiptSettings) -> dict:
    return {
        "legal_name": settings.legal_name, "fund_name": settings.fund_name, "issuer_name": settings.issuer_name,
        "abn": abn_format(settings.abn), "address_lines": _lines(settings.address),
        "signatory_name": settings.signatory_name, "signatory_title": settings.signatory_title,
        "wording_lines": _lines(settings.wording), "wording": settings.wording,
        "email_subject": settings.email_subject, "email_body": settings.email_body,
    }


def donor_snapshot(donor: Donor) -> dict:
    name = " ".join(p for p in (donor.first_name, donor.last_name) if p) or donor.organisation_name or donor.email or ""
    locality = " ".join(p for p in (donor.suburb, donor.state, donor.postcode) if p)
    lines = [p for p in (donor.address_line1, donor.address_line2, locality) if p]
    if lines and donor.country and donor.country != "AU":
        lines.append(donor.country)
    return {"name": name, "email": donor.email or "", "address_lines": lines}


def gift_snapshot(donation: Donation) -> dict:
    return {
        "payment_method": donation.payment_method or "",
        "payment_method_label": PaymentMethod(donation.payment_method).label if donation.payment_method else "",
        "reference": donation.reference or "",
        "in_kind_category": donation.in_kind_category or "",
        "in_kind_category_label": InKindCategory(donation.in_kind_category).label if donation.in_kind_category else "",
        "in_kind_description": donation.in_kind_description or "",
        "in_kind_valuation_method": donation.in_kind_valuation_method or "",
    }


# --- PDFs ----------------------------------------------------------------------------------

def _pdf_context(receipt: Receipt, *, withdrawn: bool = False) -> dict:
    replaced_by_number = None
    if withdrawn and receipt.replaced_by_id:
        replaced_by_number = Receipt.objects.for_organisation(receipt.organisation_id).filter(
            pk=receipt.replaced_by_id).values_list("number", flat=True).first()
    return {
        "issuer": receipt.issuer_snapshot, "donor": receipt.donor_snapshot, "gift": receipt.gift_snapshot,
        "number": receipt.number, "kind": receipt.kind, "issued_at": receipt.issued_at, "amount_cents": receipt.amount_cents,
        "currency": receipt.currency, "donation_date": receipt.donation_date, "deductibility": receipt.deductibility,
        "withdrawn": withdrawn, "withdrawn_at": receipt.withdrawn_at, "withdraw_reason": receipt.withdraw_reason,
        "replaced_by_number": replaced_by_number,
    }


def receipt_pdf(receipt: Receipt) -> bytes:
    """The PDF as issued; a withdrawn receipt's is rebuilt from what it stated, marked WITHDRAWN."""
    if receipt.status == ReceiptStatus.ISSUED:
        return bytes(receipt.pdf)
    return render_blocks("receipts/pdf/receipt.txt", _pdf_context(receipt, withdrawn=True),
                         title=f"Receipt {receipt.number} (withdrawn)")


# --- issuing and withdrawing ------------------------------------------------------------------

def _kind(donation: Donation) -> str:
    return ReceiptKind.ACKNOWLEDGEMENT if donation.donation_type == DonationType.IN_KIND else ReceiptKind.RECEIPT


def _next_number(organisation_id: str) -> int:
    """Take the next number: the counter row is locked until the caller's transaction ends."""
    ReceiptCounter.objects.bulk_create([ReceiptCounter(organisation_id=organisation_id)], ignore_conflicts=True)
    counter = ReceiptCounter.objects.filter(organisation_id=organisation_id).select_for_update().get()
    number = counter.next_number
    counter.next_number = number + 1
    counter.save(update_fields=["next_number", "updated_at"])
    return number


def _issue(*, organisation: Organisation, actor: Actor, donation: Donation, settings: ReceiptSettings) -> Receipt:
    receipt = Receipt(
        organisation=organisation, donation=donation, donor=donation.donor, number=_next_number(organisation.id),
        kind=_kind(donation), status=ReceiptStatus.ISSUED, issued_at=timezone.now(),
        amount_cents=donation.amount_cents - donation.refunded_cents, currency=donation.currency,
        donation_date=donation.donation_date,
        deductibility=Deductibility.NONE if donation.donation_type == DonationType.IN_KIND else settings.deductibility,
        donor_snapshot=donor_snapshot(donation.donor), issuer_snapshot=issuer_snapshot(settings),
        gift_snapshot=gift_snapshot(donation),
    )
    receipt.email_requested = 1 if receipt.donor_snapshot["email"] else 0
    receipt.pdf = render_blocks("receipts/pdf/receipt.txt", _pdf_context(receipt), title=f"Receipt {receipt.number}")
    receipt.save(force_insert=True)
    event_record(organisation=organisation, actor=actor, type="receipt.issued", object_type="receipt",
                 object_id=receipt.id, after=render_receipt(receipt))
    if receipt.email_requested:
        transaction.on_commit(partial(task_send, "receipts.tasks.receipt_email_task", organisation.id, receipt.id))
    return receipt


def _withdraw(*, organisation: Organisation, actor: Actor, receipt: Receipt, reason: str,
              replaced_by: Receipt | None = None) -> Receipt:
    before = render_receipt(receipt)
    receipt.status = ReceiptStatus.WITHDRAWN
    receipt.withdrawn_at = timezone.now()
    receipt.withdraw_reason = reason
    receipt.replaced_by = replaced_by
    receipt.save(update_fields=["status", "withdrawn_at", "withdraw_reason", "replaced_by", "updated_at"])
    event_record(organisation=organisation, actor=actor, type="receipt.withdrawn", object_type="receipt",
                 object_id=receipt.id, before=before, after=render_receipt(receipt))
    return receipt


def _why_not_standing(donation: Donation) -> str | None:
    """Why the gift's receipt can no longer stand, or None if it can."""
    if donation.status == Status.VOIDED:
        return f"The donation was voided: {donation.void_reason}" if donation.void_reason else "The donation was voided."
    if donation.status == Status.REFUNDED or donation.refunded_cents >= donation.amount_cents:
        return "The donation was refunded in full."
    if donation.status != Status.CONFIRMED:
        return f"The donation is {donation.status}, no longer confirmed."
    return None


def _correction(receipt: Receipt, donation: Donation) -> str | None:
    """What changed in the gift since its receipt, or None."""
    changes = []
    kept = donation.amount_cents - donation.refunded_cents
    if receipt.amount_cents != kept:
        what = "amount (after a partial refund)" if donation.refunded_cents else "amount"
        changes.append(f"{what} {receipt.amount_cents / 100:,.2f} → {kept / 100:,.2f}")
    if receipt.donation_date != donation.donation_date:
        changes.append(f"date {receipt.donation_date.isoformat()} → {donation.donation_date.isoformat()}")
    if receipt.donor_id != donation.donor_id:
        changes.append("donor changed")
    if receipt.kind != _kind(donation):
        changes.append("kind of gift changed")
    return "Corrected: " + "; ".join(changes) + "." if changes else None


@dataclass(frozen=True)
class SyncResult:
    issued: Receipt | None = None
    withdrawn: Receipt | None = None
    skipped: str | None = None


def _set_ack(donation: Donation, value: str) -> None:
    if donation.acknowledgement_status != value:
        donation.acknowledgement_status = value
        Donation.objects.filter(pk=donation.pk, organisation_id=donation.organisation_id).update(
            acknowledgement_status=value, updated_at=timezone.now())


@transaction.atomic
def receipt_sync(*, organisation: Organisation, donation_id: str, actor: Actor | None = None, how: str = AUTO) -> SyncResult:
    """Bring one gift's receipt in line with the gift (see the module's docstring)."""
    actor = actor or Actor.system(RECEIPTS_ACTOR)
    donation = (Donation.objects.for_organisation(organisation).select_for_update(of=("self",))
                .select_related("donor").filter(pk=donation_id).first())
    if donation is None:
        raise NotFound("Donation not found.")
    settings = receipt_settings_get(organisation=organisation)
    current = Receipt.objects.for_organisation(organisation).filter(donation=donation, status=ReceiptStatus.ISSUED).first()
    gone = _why_not_standing(donation)
    if current is not None:
        if gone:
            withdrawn = _withdraw(organisation=organisation, actor=actor, receipt=current, reason=gone)
            _set_ack(donation, Acknowledgement.NEEDS_RECEIPT)
            return SyncResult(withdrawn=withdrawn)
        correction = _correction(current, donation)
        if correction is None:
            _set_ack(donation, Acknowledgement.RECEIPTED)
            return SyncResult(skipped="receipted")
        if settings is None:  # settings never go away once saved; be safe all the same
            raise ValidationFailed("Set up receipts first (Settings → Receipts).", param="settings")
        _withdraw(organisation=organisation, actor=actor, receipt=current, reason=correction)
        issued = _issue(organisation=organisation, actor=actor, donation=donation, settings=settings)
        current.replaced_by = issued
        current.save(update_fields=["replaced_by", "updated_at"])
        _set_ack(donation, Acknowledgement.RECEIPTED)
        return SyncResult(issued=issued, withdrawn=current)
    if gone:
        if how == EXPLICIT:
            raise ValidationFailed(f"No receipt can be issued: {gone[0].lower()}{gone[1:]}", param="status")
        return SyncResult(skipped="not confirmed")
    if how != EXPLICIT:
        never_receipted = not Receipt.objects.for_organisation(organisation).filter(donation=donation).exists()
        if (donation.acknowledgement_status == Acknowledgement.NEEDS_RECEIPT and never_receipted
                and donation.donor.acknowledgement_default == Acknowledgement.DO_NOT_RECEIPT):
            _set_ack(donation, Acknowledgement.DO_NOT_RECEIPT)
        if donation.acknowledgement_status == Acknowledgement.DO_NOT_RECEIPT:
            return SyncResult(skipped="do not receipt")
    if settings is None:
        if how == AUTO:
            return SyncResult(skipped="receipts not set up")
        raise ValidationFailed("Set up receipts first (Settings → Receipts): legal name, ABN and wording.", param="settings")
    if how == AUTO and settings.mode != ReceiptingMode.ON_RECORD:
        return SyncResult(skipped="batch mode")
    if how == AUTO and donation.created_at < settings.created_at:
        # Recorded before receipts were set up: a bulk run (or staff) receipts it, not a later edit.
        return SyncResult(skipped="recorded before receipts were set up")
    issued = _issue(organisation=organisation, actor=actor, donation=donation, settings=settings)
    _set_ack(donation, Acknowledgement.RECEIPTED)
    return SyncResult(issued=issued)


def receipt_sync_many(*, organisation: Organisation, donation_ids: list[str]) -> int:
    """receipt_sync for each gift, one transaction each; a gift gone (its recording
    rolled back after it asked) is skipped. Returns how many receipts were issued."""
    issued = 0
    for donation_id in donation_ids:
        try:
            result = receipt_sync(organisation=organisation, donation_id=donation_id)
        except NotFound:
            continue
        issued += 1 if result.issued else 0
    return issued


def receipt_issue(*, organisation: Organisation, actor: Actor, donation_id: str) -> Receipt:
    """Staff issue this gift's receipt now (whatever the mode or opt-outs); a
    gift with a standing receipt keeps it (corrected if the gift changed)."""
    result = receipt_sync(organisation=organisation, donation_id=donation_id, actor=actor, how=EXPLICIT)
    if result.issued is not None:
        return result.issued
    return Receipt.objects.for_organisation(organisation).get(donation_id=donation_id, status=ReceiptStatus.ISSUED)


@transaction.atomic
def receipt_withdraw(*, organisation: Organisation, actor: Actor, receipt_id: str, reason: str) -> Receipt:
    """Withdraw a receipt issued in error. The gift is then marked DO_NOT_RECEIPT,
    so no automatic receipt replaces it (staff may issue one again)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("A reason is required to withdraw a receipt.", param="reason")
    receipt = Receipt.objects.for_organisation(organisation).filter(pk=receipt_id).values_list("donation_id", flat=True).first()
    if receipt is None:
        raise NotFound("Receipt not found.")
    donation = Donation.objects.for_organisation(organisation).select_for_update(of=("self",)).get(pk=receipt)
    receipt = Receipt.objects.for_organisation(organisation).select_for_update().get(pk=receipt_id)
    receipt.guard("withdraw")
    _withdraw(organisation=organisation, actor=actor, receipt=receipt, reason=reason)
    _set_ack(donation, Acknowledgement.DO_NOT_RECEIPT)
    return receipt


# --- acknowledgement settings -------------------------------------------------------------------

def _check_ack(value: str, param: str) -> None:
    if value not in (Acknowledgement.NEEDS_RECEIPT, Acknowledgement.DO_NOT_RECEIPT):
        raise ValidationFailed("Choose NEEDS_RECEIPT or DO_NOT_RECEIPT (RECEIPTED follows from an issued receipt).", param=param)


@transaction.atomic
def donation_acknowledgement_set(*, organisation: Organisation, actor: Actor, donation_id: str, status: str) -> Donation:
    """Say whether this gift is to be receipted. A gift with a standing receipt stays RECEIPTED."""
    _check_ack(status, "acknowledgement_status")
    donation = Donation.objects.for_organisation(organisation).select_for_update(of=("self",)).filter(pk=donation_id).first()
    if donation is None:
        raise NotFound("Donation not found.")
    if Receipt.objects.for_organisation(organisation).filter(donation=donation, status=ReceiptStatus.ISSUED).exists():
        raise ValidationFailed("This gift has a standing receipt; withdraw it first.", param="acknowledgement_status")
    before = donation.acknowledgement_status
    _set_ack(donation, status)
    audit_record(organisation=organisation, actor=actor, action="donation.acknowledgement_set", object_type="donation",
                 object_id=donation.id, before={"acknowledgement_status": before}, after={"acknowledgement_status": status})
    return donation


@transaction.atomic
def donor_acknowledgement_default_set(*, organisation: Organisation, actor: Actor, donor_id: str, status: str) -> Donor:
    """The donor's default for their gifts not yet receipted."""
    _check_ack(status, "acknowledgement_default")
    donor = Donor.objects.for_organisation(organisation).select_for_update().filter(pk=donor_id).first()
    if donor is None:
        raise NotFound("Donor not found.")
    before = donor.acknowledgement_default
    Donor.objects.for_organisation(organisation).filter(pk=donor.pk).update(acknowledgement_default=status, updated_at=timezone.now())
    donor.acknowledgement_default = status
    audit_record(organisation=organisation, actor=actor, action="donor.acknowledgement_default_set", object_type="donor",
                 object_id=donor.id, before={"acknowledgement_default": before}, after={"acknowledgement_default": status})
    return donor


# --- email ------------------------------------------------------------------------------------

def receipt_email_send(*, organisation: Organisation, receipt_id: str) -> bool:
    """Send what was asked for and not yet sent (at most one email per run);
    under the receipt's lock, so a task run twice sends once. True if sent."""
    with transaction.atomic():
        receipt = Receipt.objects.for_organisation(organisation).select_for_update().filter(pk=receipt_id).first()
        if receipt is None or receipt.status != ReceiptStatus.ISSUED or receipt.email_count >= receipt.email_requested:
            return False
        email = receipt.donor_snapshot.get("email")
        if not email:
            return False
        issuer = receipt.issuer_snapshot
        context = {"issuer": issuer, "donor": receipt.donor_snapshot, "number": receipt.number, "kind": receipt.kind,
                   "amount_cents": receipt.amount_cents, "currency": receipt.currency,
                   "donation_date": receipt.donation_date, "subject": issuer.get("email_subject"),
                   "body": issuer.get("email_body")}
        subject = " ".join(render_to_string("receipts/email/receipt_subject.txt", context).split())
        message = EmailMessage(subject=subject, body=render_to_string("receipts/email/receipt_body.txt", context), to=[email])
        message.attach(receipt.file_name, bytes(receipt.pdf), "application/pdf")
        message.send()
        receipt.email_count = receipt.email_requested
        receipt.emailed_at = timezone.now()
        receipt.save(update_fields=["email_count", "emailed_at", "updated_at"])
        audit_record(organisation=organisation, actor=Actor.system(RECEIPTS_ACTOR), action="receipt.emailed",
                     object_type="receipt", object_id=receipt.id, after={"to": email, "number": receipt.number})
        return True


@transaction.atomic
def receipt_resend(*, organisation: Organisation, actor: Actor, donation_id: str) -> Receipt:
    """Email the gift's standing receipt to the donor again (after the commit, by a task)."""
    receipt = (Receipt.objects.for_organisation(organisation).select_for_update()
               .filter(donation_id=donation_id, status=ReceiptStatus.ISSUED).first())
    if receipt is None:
        raise NotFound("This donation has no standing receipt.")
    receipt.guard("resend")
    receipt.email_requested = max(receipt.email_requested, receipt.email_count) + 1
    receipt.save(update_fields=["email_requested", "updated_at"])
    audit_record(organisation=organisation, actor=actor, action="receipt.resend_requested", object_type="receipt",
                 object_id=receipt.id, after={"number": receipt.number})
    transaction.on_commit(partial(task_send, "receipts.tasks.receipt_email_task", organisation.id, receipt.id))
    return receipt


# --- bulk runs ----------------------------------------------------------------------------------

def _run_candidates(run: ReceiptRun):
    return (Donation.objects.for_organisation(run.organisation_id)
            .filter(status=Status.CONFIRMED, donation_date__gte=run.date_from, donation_date__lte=run.date_to,
                    acknowledgement_status=Acknowledgement.NEEDS_RECEIPT)
            .exclude(receipts__status=ReceiptStatus.ISSUED))


@transaction.atomic
def receipt_run_start(*, organisation: Organisation, actor: Actor, date_from: dt.date, date_to: dt.date) -> ReceiptRun:
    """Queue a bulk run: receipts for the confirmed gifts dated in the range that need one."""
    if date_from is None or date_to is None:
        raise ValidationFailed("Give the first and last date of the period.", param="date_from" if date_from is None else "date_to")
    if date_to < date_from:
        raise ValidationFailed("The last date must be on or after the first.", param="date_to")
    if receipt_settings_get(organisation=organisation) is None:
        raise ValidationFailed("Set up receipts first (Settings → Receipts).", param="settings")
    if ReceiptRun.objects.for_organisation(organisation).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        raise ValidationFailed("A bulk run is already in progress; wait for it to finish.", param="date_from")
    run = ReceiptRun.objects.create(organisation=organisation, date_from=date_from, date_to=date_to, actor_label=actor.label or "")
    run.total = _run_candidates(run).count()
    run.save(update_fields=["total"])
    audit_record(organisation=organisation, actor=actor, action="receipt_run.started", object_type="receipt_run",
                 object_id=run.id, after={"date_from": date_from.isoformat(), "date_to": date_to.isoformat(), "total": run.total})
    transaction.on_commit(partial(task_send, "receipts.tasks.receipt_run_task", organisation.id, run.id))
    return run


def receipt_run_execute(*, organisation: Organisation, run_id: str, chunk: int = 50) -> ReceiptRun:
    """Issue the run's receipts one gift (one transaction) at a time, oldest gift
    first, saving progress as it goes. Run again after a crash, it carries on:
    gifts already receipted are no longer candidates."""
    run = ReceiptRun.objects.for_organisation(organisation).filter(pk=run_id).first()
    if run is None or run.status in (RunStatus.DONE, RunStatus.FAILED):
        return run
    actor = Actor.system(f"receipts bulk run {run.id}")
    remaining = list(_run_candidates(run).order_by("donation_date", "created_at", "id").values_list("id", flat=True))
    ReceiptRun.objects.for_organisation(organisation).filter(pk=run.pk).update(
        status=RunStatus.RUNNING, total=run.processed + len(remaining), updated_at=timezone.now())
    run.refresh_from_db()
    try:
        for index, donation_id in enumerate(remaining, start=1):
            result = receipt_sync(organisation=organisation, donation_id=donation_id, actor=actor, how=BATCH)
            run.processed += 1
            run.issued += 1 if result.issued else 0
            run.skipped += 0 if result.issued else 1
            if index % chunk == 0:
                run.save(update_fields=["processed", "issued", "skipped", "updated_at"])
    except Exception as exc:
        run.status, run.error, run.finished_at = RunStatus.FAILED, str(exc)[:2000], timezone.now()
        run.save(update_fields=["processed", "issued", "skipped", "status", "error", "finished_at", "updated_at"])
        raise
    run.status, run.finished_at = RunStatus.DONE, timezone.now()
    run.save(update_fields=["processed", "issued", "skipped", "status", "finished_at", "updated_at"])
    return run


# --- the sweep ---------------------------------------------------------------------------------

SWEEP_GRACE = dt.timedelta(minutes=2)


def receipts_sweep(*, limit: int = 500) -> int:
    """What the after-commit tasks should have done and did not (a lost enqueue):
    ON_RECORD gifts confirmed a while ago and still without a receipt, and standing
    receipts that no longer match their gift. Each is synced; returns how many."""
    cutoff = timezone.now() - SWEEP_GRACE
    missing = []
    # Only gifts recorded since the organisation set receipts up (older ones are for a bulk run to receipt, if staff wish).
    for organisation_id, since in (ReceiptSettings.objects.unscoped("celery sweep").filter(mode=ReceiptingMode.ON_RECORD)
                                   .values_list("organisation_id", "created_at")):
        missing += list(Donation.objects.for_organisation(organisation_id)
                        .filter(status=Status.CONFIRMED, created_at__gte=since, updated_at__lt=cutoff,
                                acknowledgement_status=Acknowledgement.NEEDS_RECEIPT)
                        .exclude(receipts__status=ReceiptStatus.ISSUED)
                        .values_list("organisation_id", "id")[:limit - len(missing)])
        if len(missing) >= limit:
            break
    stale = (Receipt.objects.unscoped("celery sweep").filter(status=ReceiptStatus.ISSUED, donation__updated_at__lt=cutoff)
             .filter(Q(donation__status__in=[Status.VOIDED, Status.REFUNDED, Status.FAILED, Status.PENDING])
                     | ~Q(donation__donation_date=F("donation_date")) | ~Q(donation__donor_id=F("donor_id"))
                     | ~Q(amount_cents=F("donation__amount_cents") - F("donation__refunded_cents")))
             .values_list("organisation_id", "donation_id")[:limit])
    done = 0
    organisations = {}
    for organisation_id, donation_id in [*missing, *stale]:
        organisation = organisations.get(organisation_id) or Organisation.objects.get(pk=organisation_id)
        organisations[organisation_id] = organisation
        receipt_sync(organisation=organisation, donation_id=donation_id)
        done += 1
    return done


# --- annual statements ------------------------------------------------------------------------------

def annual_statement_pdf(*, organisation: Organisation, donor_id: str, year: int) -> bytes:
    """One PDF of the donor's standing receipts for gifts dated in the financial
    year that starts on 1 July of `year`."""
    settings = receipt_settings_get(organisation=organisation)
    if settings is None:
        raise ValidationFailed("Set up receipts first (Settings → Receipts).", param="settings")
    donor = Donor.objects.for_organisation(organisation).filter(pk=donor_id).first()
    if donor is None:
        raise NotFound("Donor not found.")
    if not 1900 <= year <= 2998:
        raise ValidationFailed("Choose a financial year.", param="year")
    fy_start, fy_end = financial_year_starting(year)
    receipts = list(Receipt.objects.for_organisation(organisation).filter(
        donor=donor, status=ReceiptStatus.ISSUED, donation_date__gte=fy_start, donation_date__lte=fy_end,
    ).order_by("donation_date", "number").only("number", "kind", "amount_cents", "donation_date"))
    context = {
        "issuer": issuer_snapshot(settings), "donor": donor_snapshot(donor), "fy_start": fy_start, "fy_end": fy_end,
        "today": timezone.localdate(), "receipts": receipts, "deductibility": settings.deductibility,
        "money_cents": sum(r.amount_cents for r in receipts if r.kind == ReceiptKind.RECEIPT),
        "in_kind_cents": sum(r.amount_cents for r in receipts if r.kind == ReceiptKind.ACKNOWLEDGEMENT),
    }
    return render_blocks("receipts/pdf/statement.txt", context, title=f"Statement of gifts {year}-{str(year + 1)[2:]}")


def receipts_follow_donor_merge(*, organisation: Organisation, survivor: Donor, duplicate: Donor) -> None:
    """donations.services.donor_merge's hook (registered in ReceiptsConfig.ready): the
    duplicate's receipts, issued or withdrawn, belong to the survivor from now on (a
    receipt's donor is PROTECTed: the duplicate could not be deleted otherwise). What
    each receipt states is not touched: it was issued to the name and address it
    shows, and the merge's own record (DonorMerge) keeps who the duplicate was. Runs
    in the merge's transaction, both donors locked."""
    Receipt.objects.filter(organisation=organisation, donor_id=duplicate.id).update(donor_id=survivor.id)

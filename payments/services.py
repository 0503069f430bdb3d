"""Card payments: start a PaymentIntent, follow it to the books, and keep the
books in step with Stripe's events.

- `payment_start` (public pages, the split giving form): checks that every
  organisation involved is connected to Stripe and that every recipient's donor
  cap has room BEFORE any PaymentIntent exists, then creates (or reuses, for the
  same checkout attempt) the PaymentIntent.
- `payment_sync` (the return page, Stripe's events): re-reads the PaymentIntent
  from Stripe and moves the payment and its donations only forward. On success,
  under the payment's row lock, once: one donation per part in its recipient's
  books through donations.services.donation_record (so the cap is checked again,
  under the donor's lock), all parts or none; if the cap refuses now, nothing is
  recorded, the whole payment is refunded and staff are alerted.
- `stripe_event_receive` (`POST /webhooks/stripe`): verify, store each event
  once, dispatch.

Money routing: separate charges and transfers. The PaymentIntent is the
platform's; once the donations are recorded, each part's share (its amount
less its share of Stripe's fee) is transferred to its recipient's connected
account in the payment's transfer group, with the charge as source.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from compliance import rules as compliance_rules
from compliance.selectors import jurisdiction_preview
from compliance.services import CapExceeded
from donations.models import Donation, DonationType, Donor, PaymentMethod, Source, Status
from donations.crm import source_fields_clean
from donations.custom_fields import custom_fields_clean
from donations.selectors import donor_with_email
from engage.models import CheckoutLink, DonationForm
from organisations.models import Membership, Organisation, Role
from organisations.services import audit_record
from payments.models import Payment, PaymentKind, PaymentPart, PaymentStatus, Payout, StripeEvent, StripeEventOutcome
from payments.plan_links import plan_manage_link_email
from payments.recurring import plan_create_from_payment
from together import stripe_gateway
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed

log = logging.getLogger("together.payments")

PAYMENTS_ACTOR_LABEL = "Stripe payments"
# Stripe's smallest AUD charge is $0.50; its largest card charge $999,999.99.
MIN_PAYMENT_CENTS = 50
MAX_PAYMENT_CENTS = 99_999_999
MAX_PARTS = 50
ATTEMPT_KEY_RE = re.compile(r"^[A-Za-z0-9:_\-.]{8,150}$")
DONOR_DETAIL_FIELDS = ("first_name", "last_name", "organisation_name", "email", "phone", "address_line1", "address_line2",
                       "suburb", "state", "postcode", "country")
DONOR_DETAIL_LIMITS = {"first_name": 100, "last_name": 100, "organisation_name": 200, "email": 254, "phone": 40,
                       "address_line1": 200, "address_line2": 200, "suburb": 100, "state": 50, "postcode": 12, "country": 2}
KIND_SOURCES = {PaymentKind.FORM: Source.STRIPE, PaymentKind.SPLIT: Source.STRIPE, PaymentKind.CHECKOUT_LINK: Source.CHECKOUT_LINK,
                PaymentKind.RECURRING: Source.STRIPE}


@dataclass
class PartSpec:
    """One recipient's share of a payment (for a form or link: the paying organisation)."""

    recipient_organisation: Organisation
    amount_cents: int
    revenue_code: str | None = None
    campaign_id: str | None = None


def _actor(request_id: str = "", label: str = PAYMENTS_ACTOR_LABEL) -> Actor:
    return Actor(type="SYSTEM", id="stripe", label=label, request_id=request_id or "")


# --- starting a payment ---------------------------------------------------------------------

def _clean_donor_details(details: Any) -> dict:
    """What the donor typed, trimmed and bounded. An email is required: it matches
    the donor in each recipient's books. The page decides which other fields it asks."""
    if not isinstance(details, dict):
        raise ValidationFailed("donor_details must be an object.", param="donor_details")
    out: dict[str, str] = {}
    for key in DONOR_DETAIL_FIELDS:
        value = details.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ValidationFailed(f"{key} must be text.", param=key)
        value = value.strip()
        if len(value) > DONOR_DETAIL_LIMITS[key]:
            raise ValidationFailed(f"{key} is at most {DONOR_DETAIL_LIMITS[key]} characters.", param=key)
        if value:
            out[key] = value
    email = out.get("email", "")
    if not email:
        raise ValidationFailed("Email is required.", param="email")
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Email is not a valid address.", param="email") from None
    out["email"] = email.lower()
    if "country" in out:
        out["country"] = out["country"].upper()
    return out


def _require_connected(organisation: Organisation, *, param: str = "stripe_account") -> None:
    if not organisation.stripe_connected:
        raise ValidationFailed(f"{organisation.name} is not connected to Stripe and cannot take card payments yet.",
                               param=param, reason="stripe_not_connected", organisation_id=organisation.id)


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _donor_in_books(recipient: Organisation, email: str) -> Donor | None:
    return donor_with_email(Donor.objects.for_organisation(recipient), email)


def _cap_check_before(*, payment_organisation: Organisation, kind: str, position: int, part: PartSpec, donor: Donor | None,
                      day: dt.date, request_id: str) -> None:
    """Refuse a part the donor's cap in the recipient's books has no room for, before
    any money moves (the check runs again, under the donor's lock, at success)."""
    recipient = part.recipient_organisation
    jurisdiction = jurisdiction_preview(organisation=recipient, code=part.revenue_code)
    # A donor not in the recipient's books yet (None) has the whole cap.
    room = compliance_rules.cap_room(donor_id=donor.id if donor else None, jurisdiction=jurisdiction, day=day)
    if room is None or part.amount_cents <= room["remaining"]:
        return
    start, end = room["period"]
    param = "amount_cents" if kind != PaymentKind.SPLIT else f"parts[{position}].amount_cents"
    exc = CapExceeded(
        f"{recipient.name}: this gift of {_money(part.amount_cents)} would take the donor past the {jurisdiction} cap of "
        f"{_money(room['cap'])} for {start.isoformat()} to {end.isoformat()}: {_money(room['remaining'])} remains.",
        param=param, reason="donor_cap_exceeded", remaining_cents=room["remaining"], recipient_organisation_id=recipient.id,
    )
    # Staff see the refusal in the recipient's audit trail; the public page shows only a fixed sentence.
    audit_record(
        organisation=recipient, actor=_actor(request_id, f"Card payment via {payment_organisation.live.name}"),
        action="donation.refused", object_type="donor", object_id=donor.id if donor else "",
        after={"source": "card_payment", "kind": kind, "message": exc.message, "param": param, "reason": "donor_cap_exceeded",
               "remaining_cents": room["remaining"], "amount_cents": part.amount_cents, "donor_known": donor is not None,
               "paying_organisation_id": payment_organisation.id},
    )
    raise exc


def _check_parts(organisation: Organisation, kind: str, parts: list[PartSpec]) -> list[PartSpec]:
    if not isinstance(parts, (list, tuple)) or not parts:
        raise ValidationFailed("A payment needs at least one part.", param="parts")
    if len(parts) > MAX_PARTS:
        raise ValidationFailed(f"A payment has at most {MAX_PARTS} parts.", param="parts")
    for index, part in enumerate(parts):
        param = "amount_cents" if kind != PaymentKind.SPLIT else f"parts[{index}].amount_cents"
        if isinstance(part.amount_cents, bool) or not isinstance(part.amount_cents, int) or part.amount_cents <= 0:
            raise ValidationFailed("Each amount is a positive whole number of cents.", param=param)
        recipient = part.recipient_organisation
        if kind != PaymentKind.SPLIT and recipient.pk != organisation.pk:
            raise ValidationFailed("A form or link payment goes to its own organisation.", param="parts")
        if recipient.is_sandbox != organisation.is_sandbox:
            # A sandbox never moves live money, and live money never lands in a sandbox.
            raise ValidationFailed("A sandbox payment goes to sandbox organisations only, a live one to live ones.",
                                   param=f"parts[{index}].recipient_organisation")
    if kind != PaymentKind.SPLIT and len(parts) != 1:
        raise ValidationFailed("A form or link payment has exactly one part.", param="parts")
    total = sum(p.amount_cents for p in parts)
    if total < MIN_PAYMENT_CENTS:
        raise ValidationFailed(f"The smallest card payment is {_money(MIN_PAYMENT_CENTS)}.", param="amount_cents")
    if total > MAX_PAYMENT_CENTS:
        raise ValidationFailed(f"The largest card payment is {_money(MAX_PAYMENT_CENTS)}.", param="amount_cents")
    return list(parts)


def payment_start(*, organisation: Organisation, kind: str, source: str | None = None, attempt_key: str,
                  donor_details: dict, parts: list[PartSpec], form: DonationForm | None = None,
                  checkout_link: CheckoutLink | None = None, recommendation_set_id: str | None = None,
                  consent_text: str | None = None, consent_given: bool | None = None, frequency: str | None = None,
                  request_id: str = "", tracking: dict | None = None, custom_fields: dict | None = None) -> Payment:
    """Start (or resume) one checkout attempt and return its Payment, whose
    `client_secret` the page hands to Stripe.js. Refuses, before any PaymentIntent
    exists: an organisation not connected to Stripe (param `stripe_account`), a
    donor cap without room for a part (`CapExceeded`, donor-specific: public pages
    show `compliance.services.public_refusal_message`), a form not ACTIVE, a
    checkout link not payable. The same `attempt_key` gives the same Payment and the
    same PaymentIntent (a checkout link's key is always `link:<id>`: one intent,
    paid at most once)."""
    if kind not in PaymentKind.values or kind == PaymentKind.RECURRING:
        # RECURRING charges are made off-session by the billing engine (payments.billing).
        raise ValidationFailed("kind must be FORM, CHECKOUT_LINK or SPLIT.", param="kind")
    expected_source = KIND_SOURCES[kind]
    if source is not None and source != expected_source:
        raise ValidationFailed(f"A {kind} payment records {expected_source} donations.", param="source")
    source = expected_source
    details = _clean_donor_details(donor_details)
    parts = _check_parts(organisation, kind, parts)
    tracking = {k: v for k, v in source_fields_clean(tracking or {}).items() if v}  # source_code, referrer, utm_*
    # The gift's custom fields a form page asked (typed now; required ones are the page's to ask).
    custom_fields = custom_fields_clean(organisation, "DONATION", custom_fields, enforce_required=False) if custom_fields else {}
    if consent_text is not None and not isinstance(consent_text, str):
        raise ValidationFailed("consent_text must be text.", param="consent_text")
    if consent_given is not None and not isinstance(consent_given, bool):
        raise ValidationFailed("consent_given must be true or false.", param="consent_given")
    if kind == PaymentKind.FORM:
        if form is None or form.organisation_id != organisation.id:
            raise ValidationFailed("A form payment needs the organisation's form.", param="form")
        if not form.takes_gifts:
            raise ValidationFailed("This form is not taking gifts.", param="form", reason="form_not_active")
        if frequency and (not form.allow_recurring or frequency not in (form.recurring_frequencies or [])):
            raise ValidationFailed("This form does not offer that frequency.", param="frequency", reason="frequency_not_offered")
    elif kind == PaymentKind.CHECKOUT_LINK:
        if checkout_link is None or checkout_link.organisation_id != organisation.id:
            raise ValidationFailed("A link payment needs the organisation's checkout link.", param="checkout_link")
        checkout_link = CheckoutLink.objects.select_related("donor").get(pk=checkout_link.pk)
        attempt_key = f"link:{checkout_link.id}"
        if not checkout_link.is_payable:
            status = checkout_link.effective_status()
            raise ValidationFailed({"COMPLETED": "This link has already been paid.", "EXPIRED": "This link has expired.",
                                    "CANCELED": "This link was cancelled."}.get(status, "This link cannot be paid."),
                                   param="checkout_link", reason=f"link_{status.lower()}")
        if parts[0].amount_cents != checkout_link.amount_cents:
            raise ValidationFailed("A checkout link pays its exact amount.", param="amount_cents")
    else:
        if not recommendation_set_id:
            raise ValidationFailed("A split payment names its recommendation set.", param="recommendation_set_id")
    if frequency and kind != PaymentKind.FORM:
        raise ValidationFailed("Only a donation form's gift can recur.", param="frequency")
    if not isinstance(attempt_key, str) or not ATTEMPT_KEY_RE.fullmatch(attempt_key):
        raise ValidationFailed("attempt_key is 8 to 150 letters, digits or : _ - .", param="attempt_key")
    _require_connected(organisation)
    for part in parts:
        _require_connected(part.recipient_organisation)
    stripe_gateway.secret_key_for(organisation)  # a misconfigured key (a sandbox with a live key) refuses here
    existing = Payment.objects.for_organisation(organisation).filter(attempt_key=attempt_key).first()
    if existing is not None and existing.status in (PaymentStatus.SUCCEEDED, PaymentStatus.PROCESSING,
                                                    PaymentStatus.REFUNDED_OVER_CAP):
        if kind == PaymentKind.CHECKOUT_LINK:
            raise ValidationFailed("This link has already been paid.", param="checkout_link", reason="link_completed")
        raise ValidationFailed("This payment is already complete; reload the page to give again.", param="attempt_key",
                               reason="payment_complete")
    # The cap, before any money can move (in each recipient's books; for a link, its donor).
    day = timezone.localdate()
    for index, part in enumerate(parts):
        donor = checkout_link.donor if kind == PaymentKind.CHECKOUT_LINK else _donor_in_books(part.recipient_organisation,
                                                                                               details["email"])
        _cap_check_before(payment_organisation=organisation, kind=kind, position=index, part=part, donor=donor, day=day,
                          request_id=request_id)
    payment, amount_changed = _payment_row(
        organisation=organisation, kind=kind, source=source, attempt_key=attempt_key, details=details, parts=parts, form=form,
        checkout_link=checkout_link, recommendation_set_id=recommendation_set_id, consent_text=consent_text,
        consent_given=consent_given, frequency=frequency, request_id=request_id, tracking=tracking, custom_fields=custom_fields)
    return _payment_intent_ensure(payment, amount_changed=amount_changed)


def _payment_row(*, organisation, kind, source, attempt_key, details, parts, form, checkout_link, recommendation_set_id,
                 consent_text, consent_given, frequency, request_id, tracking=None, custom_fields=None) -> tuple[Payment, bool]:
    """The attempt's Payment, created or (same key, not finished) brought up to date
    with what the donor sent this time."""
    amount = sum(p.amount_cents for p in parts)
    values = dict(kind=kind, source=source, form=form, checkout_link=checkout_link, recommendation_set_id=recommendation_set_id,
                  amount_cents=amount, currency=organisation.currency, donor_details=details, consent_text=consent_text or None,
                  consent_given=consent_given, frequency=frequency or None, request_id=(request_id or "")[:40],
                  tracking=tracking or {}, custom_fields=custom_fields or {})
    for _attempt in range(3):
        try:
            with transaction.atomic():
                payment = (Payment.objects.for_organisation(organisation).select_for_update()
                           .filter(attempt_key=attempt_key).first())
                amount_changed = False
                if payment is None:
                    payment = Payment.objects.create(organisation=organisation, attempt_key=attempt_key, **values)
                    payment.transfer_group = f"payment_{payment.id}"
                    payment.save(update_fields=["transfer_group"])
                    audit_record(organisation=organisation, actor=_actor(request_id), action="payment.started",
                                 object_type="payment", object_id=payment.id, after=payment_snapshot(payment))
                else:
                    if payment.is_final or payment.status == PaymentStatus.PROCESSING:
                        raise ValidationFailed("This payment is already complete; reload the page to give again.",
                                               param="attempt_key", reason="payment_complete")
                    if payment.kind != kind:
                        raise ValidationFailed("This attempt belongs to another kind of payment.", param="attempt_key")
                    amount_changed = payment.amount_cents != amount
                    for key, value in values.items():
                        setattr(payment, key, value)
                    payment.save()
                    payment.parts.all().delete()
                PaymentPart.objects.bulk_create([
                    PaymentPart(organisation=organisation, payment=payment, position=index,
                                recipient_organisation=part.recipient_organisation, amount_cents=part.amount_cents,
                                revenue_code=(part.revenue_code or None), campaign_id=(part.campaign_id or None))
                    for index, part in enumerate(parts)
                ])
                return payment, amount_changed
        except IntegrityError:
            continue  # the same attempt started concurrently: take it up
    raise Conflict("This payment is being started by another request; retry.")


def _intent_metadata(payment: Payment) -> dict[str, str]:
    meta = {"organisation_id": payment.organisation_id, "payment_id": payment.id, "kind": payment.kind}
    if payment.form_id:
        meta["form_id"] = payment.form_id
    if payment.checkout_link_id:
        meta["checkout_link_id"] = payment.checkout_link_id
    if payment.recommendation_set_id:
        meta["recommendation_set_id"] = payment.recommendation_set_id
    return meta


def _stripe_customer_ensure(payment: Payment) -> str:
    """The Stripe customer a recurring gift's card is saved to (one per payment)."""
    if payment.stripe_customer_id:
        return payment.stripe_customer_id
    details = payment.donor_details or {}
    name = " ".join(p for p in (details.get("first_name"), details.get("last_name")) if p) or details.get("organisation_name")
    customer = stripe_gateway.customer_create(
        payment.organisation, email=details.get("email") or "", name=name, idempotency_key=f"cus:{payment.id}",
        metadata={"organisation_id": payment.organisation_id, "payment_id": payment.id},
    )
    Payment.objects.filter(pk=payment.pk, stripe_customer_id__isnull=True).update(stripe_customer_id=customer.id)
    payment.stripe_customer_id = customer.id
    return customer.id


def _payment_intent_ensure(payment: Payment, *, amount_changed: bool = False) -> Payment:
    """Create the attempt's PaymentIntent, or bring its amount in line (a donor who
    changed the amount after a declined card: Stripe lets an unpaid intent change)."""
    organisation = payment.organisation
    if payment.payment_intent_id:
        if amount_changed:
            stripe_gateway.payment_intent_update_amount(organisation, payment_intent_id=payment.payment_intent_id,
                                                        amount_cents=payment.amount_cents)
        return payment
    recurring = {}
    if payment.frequency:
        # A recurring gift: the card is saved to a Stripe customer for the plan's off-session charges.
        recurring = {"customer": _stripe_customer_ensure(payment), "setup_future_usage": "off_session"}
    intent = stripe_gateway.payment_intent_create(
        organisation, amount_cents=payment.amount_cents, currency=payment.currency, metadata=_intent_metadata(payment),
        idempotency_key=f"pi:{organisation.id}:{payment.attempt_key}:{payment.amount_cents}",
        transfer_group=payment.transfer_group, **recurring,
        description=f"Donation to {organisation.live.name}" if payment.kind != PaymentKind.SPLIT
        else f"Split donation through {organisation.live.name}",
    )
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if not locked.payment_intent_id:
            locked.payment_intent_id = intent.id
            locked.client_secret = intent.client_secret
            locked.save(update_fields=["payment_intent_id", "client_secret", "updated_at"])
    payment.refresh_from_db()
    return payment


def payment_snapshot(payment: Payment) -> dict:
    return {
        "id": payment.id, "object": "payment", "kind": payment.kind, "source": payment.source, "status": payment.status,
        "amount_cents": payment.amount_cents, "currency": payment.currency, "payment_intent_id": payment.payment_intent_id,
        "stripe_charge_id": payment.stripe_charge_id, "form_id": payment.form_id, "checkout_link_id": payment.checkout_link_id,
        "recommendation_set_id": payment.recommendation_set_id, "donor_email": payment.donor_email,
        "failure_message": payment.failure_message,
    }


# --- following a payment to the books ---------------------------------------------------------

def _intent_charge(intent: dict) -> dict:
    charge = intent.get("latest_charge")
    if isinstance(charge, str):
        return {"id": charge}
    return charge or {}


def _balance_transaction(charge: dict) -> dict:
    txn = charge.get("balance_transaction")
    if isinstance(txn, str):
        return {"id": txn}
    return txn or {}


def _fee_shares(parts: list[PaymentPart], fee_cents: int | None) -> list[int | None]:
    """Stripe's fee on the charge, split over the parts pro rata (the last takes the remainder)."""
    if fee_cents is None:
        return [None] * len(parts)
    total = sum(p.amount_cents for p in parts)
    shares, given = [], 0
    for index, part in enumerate(parts):
        share = fee_cents - given if index == len(parts) - 1 else fee_cents * part.amount_cents // total
        shares.append(share)
        given += share
    return shares


def _snapshot_for_donation(payment: Payment) -> dict:
    snapshot = dict(payment.donor_details or {})
    snapshot["captured_at"] = timezone.now().isoformat()
    snapshot["payment_id"] = payment.id
    return snapshot


def _recipient_donor(*, payment: Payment, recipient: Organisation, actor: Actor) -> Donor:
    """The donor in the recipient's books: a checkout link's own donor; otherwise found
    by email, or created from what the donor typed. An existing donor's name,
    address and phone are never overwritten from a public page."""
    from donations.services import donor_create

    if payment.kind == PaymentKind.CHECKOUT_LINK:
        return payment.checkout_link.donor
    if payment.plan_id is not None:
        return payment.plan.donor  # a recurring plan's charge (or its first gift): the plan's donor
    details = payment.donor_details or {}
    existing = _donor_in_books(recipient, details["email"])
    if existing is not None:
        return existing
    fields = {k: details[k] for k in DONOR_DETAIL_FIELDS if details.get(k)}
    try:
        return donor_create(organisation=recipient, actor=actor, **fields)
    except Conflict:  # the same email created concurrently (another payment of this donor)
        return _donor_in_books(recipient, details["email"])


def _recurring_fields(payment: Payment) -> dict:
    """A recurring plan's gift names its plan and period (donations.Donation.recurring_*)."""
    if payment.plan_id is None:
        return {}
    return {"recurring_plan_id": payment.plan_id, "recurring_period": payment.period}


def _custom_fields(payment: Payment) -> dict:
    """A form page's answers to its gift custom fields (the form's organisation's own fields)."""
    return {"custom_fields": dict(payment.custom_fields)} if payment.custom_fields and payment.kind == PaymentKind.FORM else {}


def _tracking_fields(payment: Payment) -> dict:
    """Where the donor came from (the public page's query string): the gift's source fields."""
    return dict(payment.tracking or {})


def _donation_metadata(payment: Payment) -> dict:
    meta = {"payment_id": payment.id}
    if payment.kind == PaymentKind.SPLIT:
        meta["recommendation_set_id"] = payment.recommendation_set_id
        meta["recommending_organisation_id"] = payment.organisation_id
    if payment.form_id:
        meta["form_id"] = payment.form_id
    if payment.checkout_link_id:
        meta["checkout_link_id"] = payment.checkout_link_id
    return meta


def _card(payment: Payment, intent: dict, charge: dict, txn: dict, fee: int | None, part: PaymentPart) -> dict:
    card = {
        "stripe_payment_intent_id": intent.get("id") or payment.payment_intent_id,
        "stripe_charge_id": charge.get("id"),
        "stripe_balance_transaction_id": txn.get("id"),
        "fee_cents": fee,
        "net_cents": (part.amount_cents - fee) if fee is not None else None,
        "donor_snapshot": _snapshot_for_donation(payment),
    }
    if payment.consent_text is not None or payment.consent_given is not None:
        card["consent_text"] = payment.consent_text
        card["consent_given"] = payment.consent_given
    return card


def _record_parts(*, payment: Payment, intent: dict, status: str, actor: Actor, day: dt.date | None = None) -> None:
    """One donation per part in its recipient's books, `status` PENDING or CONFIRMED
    (a PENDING one already there settles), all or none (the caller's savepoint)."""
    from donations.services import donation_payment_settle, donation_record

    charge = _intent_charge(intent)
    txn = _balance_transaction(charge)
    fee = txn.get("fee")
    parts = list(payment.parts.select_related("recipient_organisation", "donation").order_by("position"))
    shares = _fee_shares(parts, int(fee) if fee is not None else None)
    day = day or timezone.localdate()
    # Donor locks in one global order (recipient, then position), so two payments can never deadlock.
    for part, share in sorted(zip(parts, shares), key=lambda pair: (pair[0].recipient_organisation_id, pair[0].position)):
        recipient = part.recipient_organisation
        recipient_actor = actor if payment.kind != PaymentKind.SPLIT else _actor(
            actor.request_id, f"Split card gift via {payment.organisation.live.name}")
        card = _card(payment, intent, charge, txn, share, part)
        if part.donation_id and part.donation.status == Status.PENDING:
            if status == Status.CONFIRMED:
                donation_payment_settle(organisation=recipient, actor=recipient_actor, donation_id=part.donation_id,
                                        status=Status.CONFIRMED, card={k: v for k, v in card.items() if k != "donor_snapshot"})
            part.fee_cents = share
            part.save(update_fields=["fee_cents", "updated_at"])
            continue
        if part.donation_id and part.donation.status in (Status.CONFIRMED, Status.REFUNDED):
            continue
        donor = _recipient_donor(payment=payment, recipient=recipient, actor=recipient_actor)
        campaign_id = part.campaign_id
        kwargs = dict(
            organisation=recipient, actor=recipient_actor, donor_id=donor.id, donation_type=DonationType.MONETARY,
            amount_cents=part.amount_cents, donation_date=day, source=payment.source, status=status,
            payment_method=PaymentMethod.CARD, revenue_code=part.revenue_code, metadata=_donation_metadata(payment),
            reference=(charge.get("id") or payment.payment_intent_id or "")[:100] or None, card=card,
            notes=(f"Directed by {payment.organisation.live.name} through a recommendation set."
                   if payment.kind == PaymentKind.SPLIT else None), **_recurring_fields(payment), **_tracking_fields(payment),
            **_custom_fields(payment),
        )
        try:
            donation = donation_record(campaign_id=campaign_id, **kwargs)
        except ValidationFailed as exc:
            if exc.extra.get("reason") != "campaign_archived":
                raise
            # The money is in: a campaign archived since the page opened does not turn it away.
            donation = donation_record(campaign_id=None, **kwargs)
        part.donation = donation
        part.fee_cents = share
        part.save(update_fields=["donation", "fee_cents", "updated_at"])
        if payment.kind == PaymentKind.CHECKOUT_LINK and status == Status.CONFIRMED:
            from engage.services import checkout_link_complete

            checkout_link_complete(link_id=payment.checkout_link_id, donation=donation)


def _transfers_ensure(payment: Payment, charge_id: str | None) -> None:
    """Pay each recorded part into its recipient's connected account (its amount less
    its share of the fee), once (idempotent per part)."""
    from donations.services import donation_stripe_link

    for part in payment.parts.select_related("recipient_organisation", "donation").order_by("position"):
        if part.stripe_transfer_id or part.donation_id is None or part.donation.status != Status.CONFIRMED:
            continue
        destination = part.recipient_organisation.stripe_account_id
        if not destination:
            log.error("payment %s part %s: recipient %s has no Stripe account; transfer held", payment.id, part.position,
                      part.recipient_organisation_id)
            continue
        amount = part.amount_cents - (part.fee_cents or 0)
        if amount <= 0:
            continue
        transfer = stripe_gateway.transfer_create(
            payment.organisation, amount_cents=amount, currency=payment.currency, destination=destination,
            transfer_group=payment.transfer_group, source_transaction=charge_id, idempotency_key=f"transfer:{part.id}",
            metadata={"payment_id": payment.id, "donation_id": part.donation_id, "position": str(part.position)},
        )
        part.stripe_transfer_id = transfer.id
        part.save(update_fields=["stripe_transfer_id", "updated_at"])
        donation_stripe_link(organisation=part.recipient_organisation, donation_ids=[part.donation_id],
                             stripe_transfer_id=transfer.id)


def _move(payment: Payment, status: str, **fields) -> bool:
    if not payment.can_move_to(status) or payment.status == status and not fields:
        return False
    payment.status = status
    for key, value in fields.items():
        setattr(payment, key, value)
    payment.save()
    return True


def _staff_alert_over_cap(payment: Payment, exc: Exception, actor: Actor) -> None:
    """Audit entries in the paying organisation (and the refusing recipient's) and an
    email to their ADMINs: a payment came in that the books could not take."""
    message = getattr(exc, "message", str(exc))
    recipient_id = (getattr(exc, "extra", None) or {}).get("recipient_organisation_id")
    after = payment_snapshot(payment) | {"refusal": message, "recipient_organisation_id": recipient_id}
    audit_record(organisation=payment.organisation, actor=actor, action="payment.refunded_over_cap", object_type="payment",
                 object_id=payment.id, after=after)
    organisations = [payment.organisation]
    if recipient_id and recipient_id != payment.organisation_id:
        recipient = Organisation.objects.filter(pk=recipient_id).first()
        if recipient is not None:
            organisations.append(recipient)
            audit_record(organisation=recipient, actor=actor, action="payment.refunded_over_cap", object_type="payment",
                         object_id=payment.id, after=after)
    emails = sorted(set(Membership.objects.filter(organisation__in=[o.live for o in organisations], role=Role.ADMIN)
                        .values_list("user__email", flat=True)) - {""})
    if not emails:
        return
    subject = f"A card gift of {_money(payment.amount_cents)} was refunded: over a donor cap"
    body = (f"A card payment ({payment.id}, {_money(payment.amount_cents)}, {payment.donor_email}) succeeded after the "
            f"donor's cap room had been used by another gift. Nothing was recorded and the payment was refunded in full "
            f"through Stripe.\n\n{message}\n\nSee Settings → Payments: {settings.SITE_URL}/settings/payments\n")
    transaction.on_commit(lambda: send_mail(subject, body, None, emails, fail_silently=True))


def _refund_over_cap(payment: Payment, exc: Exception, actor: Actor) -> None:
    """The books refused the money at success: give it all back, tell staff."""
    from donations.services import donation_payment_settle

    stripe_gateway.refund(payment.organisation, payment_intent_id=payment.payment_intent_id, amount_cents=None,
                          idempotency_key=f"overcap:{payment.id}",
                          metadata={"payment_id": payment.id, "reason": "over_cap"})
    # PENDING donations of a payment that settled over the cap: they never count.
    for part in payment.parts.select_related("recipient_organisation", "donation"):
        if part.donation_id and part.donation.status == Status.PENDING:
            donation_payment_settle(organisation=part.recipient_organisation, actor=actor, donation_id=part.donation_id,
                                    status=Status.FAILED, reason="Refunded: the donor's cap had no room when the payment settled.")
    _move(payment, PaymentStatus.REFUNDED_OVER_CAP, refunded_at=timezone.now(),
          failure_message=f"Refunded in full: {getattr(exc, 'message', str(exc))}")
    _staff_alert_over_cap(payment, exc, actor)


def _on_succeeded(payment: Payment, intent: dict, actor: Actor, day: dt.date | None = None) -> Payment:
    charge = _intent_charge(intent)
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).select_related("organisation", "checkout_link").get(pk=payment.pk)
        if payment.status == PaymentStatus.REFUNDED_OVER_CAP:
            return payment
        if payment.status != PaymentStatus.SUCCEEDED:
            refusal = None
            try:
                with transaction.atomic():
                    if payment.kind == PaymentKind.FORM and payment.frequency and payment.plan_id is None:
                        plan = plan_create_from_payment(payment=payment, intent=intent)  # the gift is its period 1
                        if plan is not None:
                            plan_manage_link_email(plan=plan, signup=True)  # the donor's link, once the gift commits
                    _record_parts(payment=payment, intent=intent, status=Status.CONFIRMED, actor=actor, day=day)
            except ValidationFailed as exc:
                refusal = exc
            if refusal is not None:
                log.warning("payment %s refused by the books at success: %s", payment.id, refusal.message)
                payment.refresh_from_db(fields=["plan", "period"])  # a plan started with the gift was rolled back too
                _refund_over_cap(payment, refusal, actor)
                return payment
            _move(payment, PaymentStatus.SUCCEEDED, stripe_charge_id=charge.get("id"), succeeded_at=timezone.now(),
                  failure_message=None)
            audit_record(organisation=payment.organisation, actor=actor, action="payment.succeeded", object_type="payment",
                         object_id=payment.id, after=payment_snapshot(payment))
        _transfers_ensure(payment, charge.get("id"))
    return payment


def _on_processing(payment: Payment, intent: dict, actor: Actor) -> Payment:
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).select_related("organisation", "checkout_link").get(pk=payment.pk)
        if not payment.can_move_to(PaymentStatus.PROCESSING) or payment.status == PaymentStatus.PROCESSING:
            return payment
        with transaction.atomic():
            _record_parts(payment=payment, intent=intent, status=Status.PENDING, actor=actor)
        _move(payment, PaymentStatus.PROCESSING, stripe_charge_id=_intent_charge(intent).get("id"))
    return payment


def _on_failed(payment: Payment, intent: dict, actor: Actor, message: str, day: dt.date | None = None) -> Payment:
    """The attempt failed: the Payment says why, and each part gets a FAILED donation
    (no money counted) so staff see the attempt, once per failed charge."""
    from donations.services import donation_payment_settle, donation_record

    error = intent.get("last_payment_error") or {}
    charge_id = error.get("charge") or _intent_charge(intent).get("id")
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).select_related("organisation", "checkout_link").get(pk=payment.pk)
        if not payment.can_move_to(PaymentStatus.FAILED):
            return payment
        parts = list(payment.parts.select_related("recipient_organisation", "donation").order_by("position"))
        for part in sorted(parts, key=lambda p: (p.recipient_organisation_id, p.position)):
            recipient = part.recipient_organisation
            if part.donation_id and part.donation.status == Status.PENDING:
                donation_payment_settle(organisation=recipient, actor=actor, donation_id=part.donation_id, status=Status.FAILED,
                                        reason=f"Payment failed: {message}")
                continue
            if charge_id and Donation.objects.for_organisation(recipient).filter(stripe_charge_id=charge_id).exists():
                continue
            if not charge_id and payment.status == PaymentStatus.FAILED:
                continue
            donor = _recipient_donor(payment=payment, recipient=recipient, actor=actor)
            donation_record(
                organisation=recipient, actor=actor, donor_id=donor.id, donation_type=DonationType.MONETARY,
                amount_cents=part.amount_cents, donation_date=day or timezone.localdate(), source=payment.source,
                status=Status.FAILED, payment_method=PaymentMethod.CARD, revenue_code=part.revenue_code,
                metadata=_donation_metadata(payment), notes=f"Card payment failed: {message}"[:5000],
                reference=(charge_id or payment.payment_intent_id or "")[:100] or None,
                card={"stripe_payment_intent_id": payment.payment_intent_id, "stripe_charge_id": charge_id,
                      "donor_snapshot": _snapshot_for_donation(payment)}, **_recurring_fields(payment), **_tracking_fields(payment),
                **_custom_fields(payment),
            )
        changed = _move(payment, PaymentStatus.FAILED, failure_message=message[:2000], failed_at=timezone.now())
        if changed:
            audit_record(organisation=payment.organisation, actor=actor, action="payment.failed", object_type="payment",
                         object_id=payment.id, after=payment_snapshot(payment))
    return payment


def _intent_as_read(intent: dict | None, payment_intent_id: str) -> dict | None:
    """An intent Stripe has just answered with (an off-session create or confirm, with
    stripe_gateway.INTENT_EXPAND), when it is as complete as a fresh read: this
    intent, settled, its charge and fee expanded. Otherwise None (read it again)."""
    if not intent or intent.get("id") != payment_intent_id or intent.get("status") not in ("succeeded", "requires_payment_method"):
        return None
    charge = intent.get("latest_charge")
    if not isinstance(charge, dict) or (intent["status"] == "succeeded" and not isinstance(charge.get("balance_transaction"), dict)):
        return None
    return intent


def payment_sync(*, payment_intent_id: str, request_id: str = "", day: dt.date | None = None,
                 intent: dict | None = None) -> Payment:
    """Re-read the PaymentIntent from Stripe and move the payment (and its
    donations) forward to match: never backwards, whatever order events came in.
    `day`: the gifts' date (default today in the organisation's time zone; the
    billing engine passes the day of its run). `intent`: what Stripe answered to
    the request that just confirmed it (the billing engine's off-session charge),
    used instead of a second round trip when it is complete (`_intent_as_read`)."""
    payment = Payment.objects.select_related("organisation").filter(payment_intent_id=payment_intent_id).first()
    if payment is None:
        raise NotFound("Payment not found.")
    if payment.is_final and payment.status == PaymentStatus.REFUNDED_OVER_CAP:
        return payment
    intent = _intent_as_read(intent, payment_intent_id) or stripe_gateway.to_dict(
        stripe_gateway.payment_intent_retrieve(payment.organisation, payment_intent_id=payment_intent_id))
    actor = _actor(request_id)
    status = intent.get("status")
    if status == "succeeded":
        return _on_succeeded(payment, intent, actor, day)
    if status == "processing":
        return _on_processing(payment, intent, actor)
    if status == "canceled":
        return _on_failed(payment, intent, actor, "The payment was cancelled.", day)
    error = intent.get("last_payment_error")
    if status == "requires_payment_method" and error:
        return _on_failed(payment, intent, actor, error.get("message") or "The payment failed.", day)
    return payment


def payment_get_public(*, payment_id: str) -> Payment | None:
    """The payment a donor's status page shows (its id is the unguessable part of the URL)."""
    return Payment.objects.select_related("organisation", "organisation__live_organisation").filter(pk=payment_id).first()


# --- Stripe's events ----------------------------------------------------------------------------

class EventIgnored(Exception):
    """The event is about nothing of ours (another environment's, or a type we do not handle)."""


def _platform(livemode: bool):
    """Whose key re-reads a platform-level object (a payout): live events with the
    live key, test events with the test key."""
    return SimpleNamespace(is_sandbox=not livemode, id="platform")


def _payment_for_charge(charge: dict) -> Payment | None:
    payment = Payment.objects.select_related("organisation").filter(stripe_charge_id=charge.get("id")).first()
    if payment is None and charge.get("payment_intent"):
        intent_id = charge["payment_intent"] if isinstance(charge["payment_intent"], str) else charge["payment_intent"].get("id")
        payment = Payment.objects.select_related("organisation").filter(payment_intent_id=intent_id).first()
    return payment


def _charge_donations(charge_id: str) -> list[Donation]:
    """The card gifts paid by this charge (every part of a split payment), by recipient and position."""
    return list(Donation.objects.filter(stripe_charge_id=charge_id, source__in=(Source.STRIPE, Source.CHECKOUT_LINK))
                .exclude(status=Status.FAILED).select_related("organisation").order_by("organisation_id", "created_at"))


def charge_refunds_sync(*, charge_id: str, organisation: Organisation, request_id: str = "") -> list[Donation]:
    """Record what Stripe refunded of a charge on its donations, forward only. A refund
    made by Together names its donation (metadata.donation_id); one made in Stripe's
    dashboard is attributed to the charge's gifts in order, filling each."""
    from donations.services import donation_refund_sync

    client_org = organisation
    refunds = stripe_gateway.charge_refunds(client_org, charge_id=charge_id)
    donations = _charge_donations(charge_id)
    if not donations:
        return []
    by_id = {d.id: d for d in donations}
    target = {d.id: 0 for d in donations}
    unattributed = 0
    for refund in refunds:
        if refund.get("status") in ("failed", "canceled"):
            continue
        donation_id = (refund.get("metadata") or {}).get("donation_id")
        if (refund.get("metadata") or {}).get("reason") == "over_cap":
            continue
        if donation_id in by_id:
            target[donation_id] += int(refund.get("amount") or 0)
        else:
            unattributed += int(refund.get("amount") or 0)
    for donation in donations:
        room = donation.amount_cents - target[donation.id]
        take = min(room, unattributed)
        target[donation.id] += take
        unattributed -= take
    actor = _actor(request_id)
    out = []
    for donation in donations:
        if target[donation.id] <= donation.refunded_cents:
            continue
        with transaction.atomic():
            # As donation_refund locks: the donor, then the gift; a refund made here meanwhile is seen.
            Donor.objects.select_for_update().filter(pk=donation.donor_id).exists()
            donation = Donation.objects.select_for_update(of=("self",)).select_related("organisation").get(pk=donation.pk)
            if target[donation.id] <= donation.refunded_cents:
                continue
            # Money refunded in Stripe's dashboard is taken back from the recipient's account too.
            _transfer_take_back(donation, amount_cents=target[donation.id] - donation.refunded_cents,
                                key=f"reversal:{donation.id}:{target[donation.id]}")
            out.append(donation_refund_sync(organisation=donation.organisation, actor=actor, donation_id=donation.id,
                                            refunded_cents=target[donation.id], reason="Refunded in Stripe."))
    return out


def _transfer_take_back(donation: Donation, *, amount_cents: int | None, key: str) -> None:
    """Reverse (part of) the transfer that paid this gift into its recipient's account:
    `amount_cents`, or all that is left of it (None), never more than is left."""
    if not donation.stripe_transfer_id:
        return
    transfer = stripe_gateway.to_dict(stripe_gateway.transfer_retrieve(donation.organisation,
                                                                       transfer_id=donation.stripe_transfer_id))
    left = int(transfer.get("amount") or 0) - int(transfer.get("amount_reversed") or 0)
    amount = left if amount_cents is None else min(amount_cents, left)
    if amount > 0:
        stripe_gateway.transfer_reverse(donation.organisation, transfer_id=donation.stripe_transfer_id, amount_cents=amount,
                                        idempotency_key=key, metadata={"donation_id": donation.id})


def _on_charge_refunded(event: dict, request_id: str) -> str:
    charge = event["data"]["object"]
    payment = _payment_for_charge(charge)
    donations = _charge_donations(charge["id"])
    if payment is None and not donations:
        raise EventIgnored("no payment or donation for this charge")
    organisation = payment.organisation if payment is not None else donations[0].organisation
    synced = charge_refunds_sync(charge_id=charge["id"], organisation=organisation, request_id=request_id)
    return f"{len(synced)} donation(s) refunded further"


def _on_dispute(event: dict, request_id: str) -> str:
    from donations.services import donation_dispute_sync

    dispute = event["data"]["object"]
    charge_id = dispute.get("charge") if isinstance(dispute.get("charge"), str) else (dispute.get("charge") or {}).get("id")
    donations = _charge_donations(charge_id) if charge_id else []
    if not donations:
        raise EventIgnored("no donation for this charge")
    # Re-read: events may come out of order; the dispute's state now is what counts.
    current = stripe_gateway.to_dict(stripe_gateway.dispute_retrieve(donations[0].organisation, dispute_id=dispute["id"]))
    status = current.get("status") or dispute.get("status") or ""
    lost = status == "lost"
    actor = _actor(request_id)
    for donation in donations:
        if lost:  # the bank took the money back from the platform: so does the platform from the recipient
            _transfer_take_back(donation, amount_cents=None, key=f"dispute:{dispute['id']}:{donation.id}")
        donation_dispute_sync(organisation=donation.organisation, actor=actor, donation_id=donation.id,
                              dispute_status=status, lost=lost)
    return f"dispute {status} on {len(donations)} donation(s)"


def _on_payout_paid(event: dict, request_id: str) -> str:
    """Link the donations whose money this payout took to the bank, and keep a
    Payout row per organisation concerned (the per-payout reconciliation view)."""
    from donations.services import donation_stripe_link

    payout = event["data"]["object"]
    account = event.get("account")
    platform = _platform(bool(event.get("livemode")))
    current = stripe_gateway.to_dict(stripe_gateway.payout_retrieve(platform, payout_id=payout["id"], stripe_account=account))
    if current.get("status") != "paid":
        raise EventIgnored(f"payout is {current.get('status')}")
    txns = [stripe_gateway.to_dict(t) for t in
            stripe_gateway.payout_balance_transactions(platform, payout_id=payout["id"], stripe_account=account)]
    txn_ids = [t["id"] for t in txns if t.get("id")]
    sources = [t["source"] for t in txns if isinstance(t.get("source"), str)]
    donations = list(
        Donation.objects.filter(source__in=(Source.STRIPE, Source.CHECKOUT_LINK))
        .filter(Q(stripe_balance_transaction_id__in=txn_ids) | Q(stripe_charge_id__in=sources) | Q(stripe_transfer_id__in=sources))
        .exclude(status=Status.FAILED)
        .values("id", "organisation_id", "amount_cents", "fee_cents", "net_cents")
    )
    if not donations:
        raise EventIgnored("no donation of ours in this payout")
    arrival = current.get("arrival_date")
    arrival_date = dt.datetime.fromtimestamp(int(arrival), tz=dt.timezone.utc).date() if arrival else None
    by_org: dict[str, list[dict]] = {}
    for row in donations:
        by_org.setdefault(row["organisation_id"], []).append(row)
    for organisation in Organisation.objects.filter(pk__in=list(by_org)).order_by("pk"):
        rows = by_org[organisation.id]
        with transaction.atomic():
            Payout.objects.update_or_create(
                organisation=organisation, payout_id=payout["id"],
                defaults=dict(amount_cents=int(current.get("amount") or 0), currency=(current.get("currency") or "aud").upper(),
                              arrival_date=arrival_date, status=current.get("status") or "paid", paid_at=timezone.now(),
                              donations_count=len(rows), gross_cents=sum(r["amount_cents"] for r in rows),
                              fee_cents=sum(r["fee_cents"] or 0 for r in rows),
                              net_cents=sum(r["net_cents"] if r["net_cents"] is not None else r["amount_cents"] for r in rows)),
            )
            donation_stripe_link(organisation=organisation, donation_ids=[r["id"] for r in rows], stripe_payout_id=payout["id"])
    return f"{len(donations)} donation(s) in {len(by_org)} organisation(s)"


def _on_payment_intent(event: dict, request_id: str) -> str:
    intent = event["data"]["object"]
    if not Payment.objects.filter(payment_intent_id=intent["id"]).exists():
        raise EventIgnored("not a payment of ours")
    payment = payment_sync(payment_intent_id=intent["id"], request_id=request_id)
    return f"payment {payment.id} {payment.status}"


HANDLERS = {
    "payment_intent.succeeded": _on_payment_intent,
    "payment_intent.processing": _on_payment_intent,
    "payment_intent.payment_failed": _on_payment_intent,
    "payment_intent.canceled": _on_payment_intent,
    "charge.refunded": _on_charge_refunded,
    "charge.dispute.created": _on_dispute,
    "charge.dispute.updated": _on_dispute,
    "charge.dispute.closed": _on_dispute,
    "payout.paid": _on_payout_paid,
}


def stripe_event_receive(*, payload: bytes, sig_header: str, request_id: str = "") -> StripeEvent | None:
    """`POST /webhooks/stripe`: verify the signature (raises
    stripe_gateway.SignatureInvalid: 400, nothing stored), store the event once by
    its id, and process it once. A duplicate returns the stored row untouched.
    A failure while processing is recorded and re-raised (the view answers 500,
    so Stripe sends the event again and it is processed then)."""
    event = stripe_gateway.to_dict(stripe_gateway.construct_event(payload, sig_header))
    event_id, event_type = event.get("id"), event.get("type") or ""
    if not event_id:
        raise stripe_gateway.SignatureInvalid("The event has no id.")
    obj = (event.get("data") or {}).get("object") or {}
    row, _created = StripeEvent.objects.get_or_create(
        event_id=event_id,
        defaults={"type": event_type[:100], "livemode": bool(event.get("livemode")), "object_id": str(obj.get("id") or "")[:255]},
    )
    if row.processed_at is not None:
        return row
    handler = HANDLERS.get(event_type)
    try:
        with transaction.atomic():
            # One processing at a time per event: a concurrent duplicate waits here, then sees it processed.
            locked = StripeEvent.objects.select_for_update().get(pk=row.pk)
            if locked.processed_at is not None:
                return locked
            if handler is None:
                outcome, detail = StripeEventOutcome.IGNORED, "type not handled"
            else:
                try:
                    with transaction.atomic():
                        detail = handler(event, request_id)
                    outcome = StripeEventOutcome.PROCESSED
                except EventIgnored as exc:
                    outcome, detail = StripeEventOutcome.IGNORED, str(exc)
            locked.processed_at = timezone.now()
            locked.outcome = outcome
            locked.detail = (detail or "")[:2000]
            locked.save(update_fields=["processed_at", "outcome", "detail"])
            return locked
    except Exception as exc:
        log.exception("stripe event %s (%s) failed", event_id, event_type)
        StripeEvent.objects.filter(pk=row.pk, processed_at__isnull=True).update(
            outcome=StripeEventOutcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:2000])
        raise

"""Every state change of donation forms and checkout links.

The API, the dashboard, the admin, the public payment pages (through the
payments app) and Celery tasks call these. Each runs in a transaction, locks
what it decides on, and writes an audit entry and its public event together
(`webhooks.events.event_record`: `form.created`, `checkout_link.completed` …).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from donations.models import Donation, Donor
from donations.services import campaign_for_gift, revenue_code_adopt
from engage.models import (
    CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS, CHECKOUT_LINK_MAX_EXPIRY_DAYS, CONSENT_TEXT_MAX, MAXIMUM_CHARGE_CENTS, SLUG_MAX,
    SLUG_PATTERN, CheckoutLink, DonationForm, FormStatus, Frequency, LinkStatus, PaymentMethodType, Visibility,
)
from engage.selectors import form_snapshot, link_snapshot
from organisations.models import Organisation
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.events import event_record

SLUG_RE = re.compile(SLUG_PATTERN)
# Stripe's smallest AUD charge.
STRIPE_MINIMUM_CENTS = 50
MAX_SUGGESTED_AMOUNTS = 12
# Slugs that would read as ours rather than the organisation's.
RESERVED_SLUGS = frozenset({"admin", "api", "new", "edit", "preview", "intent", "together", "static", "c", "pay", "give"})
# Payment methods the checkout page takes today. BECS and PayTo are known values
# (product.md §4) but need a bank mandate flow the page does not have yet.
AVAILABLE_PAYMENT_METHODS = frozenset({PaymentMethodType.CARD})

COMPLETION_ACTOR = Actor.system("Stripe payment")
EXPIRY_ACTOR = Actor.system("checkout link expiry")


def _require_connected(organisation: Organisation, *, what: str) -> None:
    if not organisation.stripe_connected:
        raise ValidationFailed(
            f"Stripe is not connected for this organisation: connect it in Settings → Payments before {what}.",
            param="stripe_account", reason="stripe_not_connected",
        )


def _text(value: Any, param: str, *, max_length: int, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ValidationFailed(f"{param} is required.", param=param)
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{param} must be text.", param=param)
    value = value.strip()
    if not value:
        if required:
            raise ValidationFailed(f"{param} must not be blank.", param=param)
        return None
    if len(value) > max_length:
        raise ValidationFailed(f"{param} is at most {max_length} characters.", param=param)
    return value




def _positive_cents(value: Any, param: str, *, minimum: int = 1, maximum: int = MAXIMUM_CHARGE_CENTS) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{param} must be an integer number of cents.", param=param)
    if value < minimum:
        raise ValidationFailed(f"{param} must be at least {minimum} cents.", param=param)
    if value > maximum:
        raise ValidationFailed(f"{param} must be at most {maximum} cents.", param=param)
    return value


# --- donation forms ------------------------------------------------------------------

FORM_FIELDS_WRITABLE = {
    "name", "slug", "status", "title", "description", "suggested_amounts_cents", "allow_custom", "default_amount_cents",
    "minimum_cents", "maximum_cents", "allow_recurring", "recurring_frequencies", "phone_visibility",
    "address_visibility", "revenue_code", "campaign_id", "custom_field_keys",
}
MAX_FORM_CUSTOM_FIELDS = 20


def _clean_custom_field_keys(organisation: Organisation, value: Any) -> list[str]:
    """The gift custom fields a form's page asks: active DONATION fields of the organisation, each once."""
    from donations.custom_fields import custom_fields_active

    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(k, str) for k in value):
        raise ValidationFailed("custom_field_keys must be a list of custom field keys.", param="custom_field_keys")
    if len(value) > MAX_FORM_CUSTOM_FIELDS:
        raise ValidationFailed(f"A form asks at most {MAX_FORM_CUSTOM_FIELDS} custom fields.", param="custom_field_keys")
    if len(set(value)) != len(value):
        raise ValidationFailed("custom_field_keys lists each field once.", param="custom_field_keys")
    active = {d["key"] for d in custom_fields_active(organisation=organisation, applies_to="DONATION")}
    unknown = [k for k in value if k not in active]
    if unknown:
        raise ValidationFailed(f"'{unknown[0]}' is not an active gift custom field of this organisation.",
                               param="custom_field_keys", reason="unknown_custom_field")
    return list(value)


def _clean_slug(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationFailed("slug must be text.", param="slug")
    slug = value.strip()
    if not slug:
        raise ValidationFailed("slug is required.", param="slug")
    if len(slug) > SLUG_MAX:
        raise ValidationFailed(f"slug is at most {SLUG_MAX} characters.", param="slug")
    if not SLUG_RE.fullmatch(slug):
        raise ValidationFailed(
            "slug is lower-case letters and digits in words joined by single hyphens, like spring-appeal-2027.", param="slug"
        )
    if slug in RESERVED_SLUGS:
        raise ValidationFailed(f"slug '{slug}' is reserved; choose another.", param="slug")
    return slug


def _slug_free(slug: str, *, exclude_id: str | None = None) -> None:
    taken = DonationForm.objects.filter(slug=slug)
    if exclude_id:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        # Slugs are global (the public address has no organisation in it): the
        # other form may be another organisation's, so it is not named.
        raise Conflict(f"The slug '{slug}' is already taken; choose another.", param="slug")


def _clean_amounts(value: Any) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValidationFailed("suggested_amounts_cents needs at least one amount.", param="suggested_amounts_cents")
    if len(value) > MAX_SUGGESTED_AMOUNTS:
        raise ValidationFailed(f"suggested_amounts_cents has at most {MAX_SUGGESTED_AMOUNTS} amounts.", param="suggested_amounts_cents")
    out = []
    for amount in value:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount % 100:
            raise ValidationFailed("Suggested amounts are whole dollars: positive multiples of 100 cents.", param="suggested_amounts_cents")
        if amount > MAXIMUM_CHARGE_CENTS:
            raise ValidationFailed(f"Suggested amounts are at most {MAXIMUM_CHARGE_CENTS} cents.", param="suggested_amounts_cents")
        out.append(amount)
    if len(set(out)) != len(out):
        raise ValidationFailed("Suggested amounts must differ from each other.", param="suggested_amounts_cents")
    return sorted(out)


def _clean_frequencies(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValidationFailed("recurring_frequencies must be a list.", param="recurring_frequencies")
    unknown = [f for f in value if f not in Frequency.values]
    if unknown:
        raise ValidationFailed(f"Unknown frequency '{unknown[0]}'; use {', '.join(Frequency.values)}.", param="recurring_frequencies")
    if len(set(value)) != len(value):
        raise ValidationFailed("recurring_frequencies lists each frequency once.", param="recurring_frequencies")
    order = list(Frequency.values)
    return sorted(value, key=order.index)


def _apply_form_fields(organisation: Organisation, form: DonationForm, fields: dict[str, Any], *, creating: bool) -> None:
    unknown = set(fields) - FORM_FIELDS_WRITABLE
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"Unknown form field '{name}'.", param=name)
    if "name" in fields or creating:
        form.name = _text(fields.get("name"), "name", max_length=200, required=True)
    if "title" in fields or creating:
        form.title = _text(fields.get("title"), "title", max_length=200, required=True)
    if "description" in fields:
        form.description = _text(fields["description"], "description", max_length=5000)
    if "slug" in fields or creating:
        slug = _clean_slug(fields.get("slug"))
        if not creating and slug != form.slug and form.status != FormStatus.DRAFT:
            raise ValidationFailed(
                "The slug is the form's public address and is permanent once published: move the form back to DRAFT "
                "to change it (links already shared will stop working).", param="slug", reason="slug_permanent",
            )
        if creating or slug != form.slug:
            _slug_free(slug, exclude_id=None if creating else form.id)
        form.slug = slug
    if "suggested_amounts_cents" in fields or creating:
        form.suggested_amounts_cents = _clean_amounts(fields.get("suggested_amounts_cents"))
    for flag in ("allow_custom", "allow_recurring"):
        if flag in fields:
            if not isinstance(fields[flag], bool):
                raise ValidationFailed(f"{flag} must be true or false.", param=flag)
            setattr(form, flag, fields[flag])
    for name in ("minimum_cents", "maximum_cents", "default_amount_cents"):
        if name in fields:
            value = fields[name]
            setattr(form, name, None if value is None else _positive_cents(
                value, name, minimum=STRIPE_MINIMUM_CENTS if name == "minimum_cents" else 1))
    if "recurring_frequencies" in fields:
        form.recurring_frequencies = _clean_frequencies(fields["recurring_frequencies"] or [])
    elif creating and not form.recurring_frequencies:
        form.recurring_frequencies = [Frequency.MONTHLY] if form.allow_recurring else []
    for name in ("phone_visibility", "address_visibility"):
        if name in fields:
            if fields[name] not in Visibility.values:
                raise ValidationFailed(f"{name} must be one of {', '.join(Visibility.values)}.", param=name)
            setattr(form, name, fields[name])
    if "revenue_code" in fields:
        form.revenue_code = revenue_code_adopt(organisation=organisation, code=fields["revenue_code"])
    if "campaign_id" in fields:
        form.campaign = campaign_for_gift(organisation, fields["campaign_id"])
    if "custom_field_keys" in fields:
        form.custom_field_keys = _clean_custom_field_keys(organisation, fields["custom_field_keys"])
    if "status" in fields:
        status = fields["status"]
        if status not in FormStatus.values:
            raise ValidationFailed(f"status must be one of {', '.join(FormStatus.values)}.", param="status")
        if status == FormStatus.ARCHIVED:
            raise ValidationFailed("Archive a form with POST /api/v1/forms/{id}/archive.", param="status")
        if not creating and not form.can_move_to(status):
            raise ValidationFailed(f"A {form.status} form cannot become {status}.", param="status", reason="status_transition")
        form.status = status
    _check_form(organisation, form)


def _check_form(organisation: Organisation, form: DonationForm) -> None:
    """The rules tying the fields together, checked on the form as it would be saved."""
    minimum, maximum = form.effective_minimum_cents, form.effective_maximum_cents
    if form.maximum_cents is not None and form.maximum_cents < minimum:
        raise ValidationFailed(f"maximum_cents must be at least the minimum ({minimum} cents).", param="maximum_cents",
                               reason="maximum_below_minimum")
    if not form.visible_amounts_cents() and not form.allow_custom:
        raise ValidationFailed(
            "No suggested amount lies between the minimum and the maximum, and allow_custom is off: donors could not pick any amount.",
            param="suggested_amounts_cents", reason="no_amount_available",
        )
    if form.default_amount_cents is not None and form.default_amount_cents not in form.visible_amounts_cents():
        raise ValidationFailed("default_amount_cents must be one of the suggested amounts donors can pick.", param="default_amount_cents",
                               reason="default_not_offered")
    if form.allow_recurring and not form.recurring_frequencies:
        raise ValidationFailed("allow_recurring needs at least one frequency in recurring_frequencies.", param="recurring_frequencies",
                               reason="recurring_without_frequency")
    if form.status == FormStatus.ACTIVE:
        _require_connected(organisation, what="a form takes gifts")


def _form_for_update(organisation: Organisation, form_id: str) -> DonationForm:
    form = DonationForm.objects.for_organisation(organisation).select_for_update().filter(pk=form_id).first()
    if form is None:
        raise NotFound("Form not found.")
    return form


def _save_form(form: DonationForm, **kwargs) -> None:
    try:
        with transaction.atomic():
            form.save(**kwargs)
    except IntegrityError as exc:
        if "slug" in str(exc):  # a concurrent create took the slug between the check and the insert
            raise Conflict(f"The slug '{form.slug}' is already taken; choose another.", param="slug") from None
        raise


@transaction.atomic
def form_create(*, organisation: Organisation, actor: Actor, **fields) -> DonationForm:
    form = DonationForm(organisation=organisation)
    _apply_form_fields(organisation, form, fields, creating=True)
    _save_form(form, force_insert=True)
    event_record(organisation=organisation, actor=actor, type="form.created", object_type="form", object_id=form.id,
                 after=form_snapshot(form_id=form.id))
    return form


@transaction.atomic
def form_update(*, organisation: Organisation, actor: Actor, form_id: str, **changes) -> DonationForm:
    form = _form_for_update(organisation, form_id)
    if form.status == FormStatus.ARCHIVED:
        raise ValidationFailed("An archived form cannot be changed.", param="status", reason="form_archived")
    before = form_snapshot(form_id=form.id)
    _apply_form_fields(organisation, form, changes, creating=False)
    _save_form(form)
    after = form_snapshot(form_id=form.id)
    if after != before:
        event_record(organisation=organisation, actor=actor, type="form.updated", object_type="form", object_id=form.id,
                     before=before, after=after)
    return form


@transaction.atomic
def form_archive(*, organisation: Organisation, actor: Actor, form_id: str) -> DonationForm:
    """ARCHIVED is final: the page answers 404 and the slug stays taken (shared links never land on another form)."""
    form = _form_for_update(organisation, form_id)
    if form.status == FormStatus.ARCHIVED:
        return form
    before = form_snapshot(form_id=form.id)
    form.status = FormStatus.ARCHIVED
    form.archived_at = timezone.now()
    form.save(update_fields=["status", "archived_at", "updated_at"])
    event_record(organisation=organisation, actor=actor, type="form.archived", object_type="form", object_id=form.id,
                 before=before, after=form_snapshot(form_id=form.id))
    return form


# --- checkout links ------------------------------------------------------------------

def _clean_payment_methods(value: Any) -> list[str]:
    if value is None:
        return [PaymentMethodType.CARD]
    if not isinstance(value, list) or not value:
        raise ValidationFailed("payment_methods needs at least one method.", param="payment_methods")
    unknown = [m for m in value if m not in PaymentMethodType.values]
    if unknown:
        raise ValidationFailed(f"Unknown payment method '{unknown[0]}'; use {', '.join(PaymentMethodType.values)}.", param="payment_methods")
    if len(set(value)) != len(value):
        raise ValidationFailed("payment_methods lists each method once.", param="payment_methods")
    unavailable = [m for m in value if m not in AVAILABLE_PAYMENT_METHODS]
    if unavailable:
        raise ValidationFailed(
            f"{unavailable[0]} is not available at checkout yet; checkout links take CARD.", param="payment_methods",
            reason="payment_method_unavailable",
        )
    order = list(PaymentMethodType.values)
    return sorted(value, key=order.index)


def _clean_expiry(value: Any, now: dt.datetime) -> dt.datetime:
    if value is None:
        return now + dt.timedelta(days=CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS)
    if not isinstance(value, dt.datetime) or timezone.is_naive(value):
        raise ValidationFailed("expires_at must be a date and time with a time zone.", param="expires_at")
    if value <= now + dt.timedelta(minutes=5):
        raise ValidationFailed("expires_at must be at least 5 minutes in the future.", param="expires_at", reason="expiry_too_soon")
    if value > now + dt.timedelta(days=CHECKOUT_LINK_MAX_EXPIRY_DAYS):
        raise ValidationFailed(f"expires_at is at most {CHECKOUT_LINK_MAX_EXPIRY_DAYS} days away.", param="expires_at",
                               reason="expiry_too_late")
    return value


@transaction.atomic
def checkout_link_create(
    *,
    organisation: Organisation,
    actor: Actor,
    donor_id: str,
    amount_cents: int,
    currency: str | None = None,
    description: str | None = None,
    payment_methods: list[str] | None = None,
    consent_text: str | None = None,
    revenue_code: str | None = None,
    campaign_id: str | None = None,
    expires_at: dt.datetime | None = None,
) -> CheckoutLink:
    """One pre-filled payment page for one donor and one exact amount (product.md §4).
    Needs Stripe connected and a donor with an email (the receipt and the donor match
    of the payment use it)."""
    _require_connected(organisation, what="creating checkout links")
    donor = Donor.objects.for_organisation(organisation).filter(pk=donor_id).first() if isinstance(donor_id, str) else None
    if donor is None:
        raise ValidationFailed(f"No donor '{donor_id}' in this organisation.", param="donor_id")
    if not (donor.email or "").strip():
        raise ValidationFailed("The donor has no email: add one to the donor before creating a checkout link.",
                               param="donor_id", reason="donor_email_missing")
    amount_cents = _positive_cents(amount_cents, "amount_cents", minimum=STRIPE_MINIMUM_CENTS)
    if currency is not None and str(currency).upper() != organisation.currency:
        raise ValidationFailed(f"currency must be {organisation.currency}, the organisation's currency.", param="currency")
    now = timezone.now()
    link = CheckoutLink(
        organisation=organisation, donor=donor, amount_cents=amount_cents, currency=organisation.currency,
        description=_text(description, "description", max_length=200),
        payment_methods=_clean_payment_methods(payment_methods),
        consent_text=_text(consent_text, "consent_text", max_length=CONSENT_TEXT_MAX),
        revenue_code=revenue_code_adopt(organisation=organisation, code=revenue_code),
        campaign=campaign_for_gift(organisation, campaign_id),
        expires_at=_clean_expiry(expires_at, now),
        status=LinkStatus.ACTIVE,
    )
    link.save(force_insert=True)
    event_record(organisation=organisation, actor=actor, type="checkout_link.created", object_type="checkout_link",
                 object_id=link.id, after=link_snapshot(link_id=link.id))
    return link


def _link_for_update(organisation: Organisation, link_id: str) -> CheckoutLink:
    link = CheckoutLink.objects.for_organisation(organisation).select_for_update().filter(pk=link_id).first()
    if link is None:
        raise NotFound("Checkout link not found.")
    return link


@transaction.atomic
def checkout_link_cancel(*, organisation: Organisation, actor: Actor, link_id: str) -> CheckoutLink:
    """An ACTIVE link stops taking payment. Cancelling a cancelled link changes nothing;
    a paid or expired link cannot be cancelled (409)."""
    link = _link_for_update(organisation, link_id)
    if link.status == LinkStatus.CANCELED:
        return link
    status = link.effective_status()
    if status != LinkStatus.ACTIVE:
        raise Conflict(f"Checkout link {link.id} is {status} and cannot be cancelled.", param="status", status=status)
    before = link_snapshot(link_id=link.id)
    link.status = LinkStatus.CANCELED
    link.canceled_at = timezone.now()
    link.save(update_fields=["status", "canceled_at", "updated_at"])
    event_record(organisation=organisation, actor=actor, type="checkout_link.canceled", object_type="checkout_link",
                 object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
    return link


@transaction.atomic
def checkout_link_complete(*, link_id: str, donation: Donation) -> CheckoutLink:
    """The link's payment succeeded and `donation` records it (called by payments,
    inside its transaction). Once: the same donation again changes nothing; a second
    donation for a paid link is refused (payments never takes a second payment:
    a link has one PaymentIntent). Money that arrived after the link expired or was
    cancelled (the donor was already paying) still completes it: the gift is real."""
    link = CheckoutLink.objects.select_for_update().filter(pk=link_id).first()
    if link is None:
        raise NotFound("Checkout link not found.")
    if donation.organisation_id != link.organisation_id:
        raise ValidationFailed("The donation belongs to another organisation.", param="donation")
    if link.status == LinkStatus.COMPLETED:
        if link.donation_id == donation.id:
            return link
        raise Conflict(f"Checkout link {link.id} is already paid by donation {link.donation_id}.", param="checkout_link")
    before = link_snapshot(link_id=link.id)
    link.status = LinkStatus.COMPLETED
    link.completed_at = timezone.now()
    link.donation = donation
    link.save(update_fields=["status", "completed_at", "donation", "updated_at"])
    event_record(organisation=link.organisation, actor=COMPLETION_ACTOR, type="checkout_link.completed",
                 object_type="checkout_link", object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
    return link


def checkout_links_expire_due(*, limit: int = 1000) -> int:
    """Persist EXPIRED on ACTIVE links past their expiry (the periodic sweep). Readers
    already see them as EXPIRED; this makes the stored status and the audit trail agree.
    One short transaction per link, skipping rows a payment holds locked."""
    now = timezone.now()
    ids = list(CheckoutLink.objects.filter(status=LinkStatus.ACTIVE, expires_at__lte=now).order_by("expires_at")
               .values_list("id", flat=True)[:limit])
    done = 0
    for link_id in ids:
        with transaction.atomic():
            link = (CheckoutLink.objects.select_for_update(skip_locked=True).select_related("organisation")
                    .filter(pk=link_id, status=LinkStatus.ACTIVE, expires_at__lte=now).first())
            if link is None:
                continue
            before = link_snapshot(link_id=link.id)
            link.status = LinkStatus.EXPIRED
            link.expired_at = now
            link.save(update_fields=["status", "expired_at", "updated_at"])
            event_record(organisation=link.organisation, actor=EXPIRY_ACTOR, type="checkout_link.expired",
                         object_type="checkout_link", object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
            done += 1
    return done

"""The donor's management link for a recurring plan, and what the donor does through it.

A plan's link is `/plans/<token>` (payments/selfservice.py), with

    token = TimestampSigner(salt=LINK_SALT).sign("<plan id>.<plan.manage_link_version>")

(Django's signing: HMAC with SECRET_KEY, the time it was made in the token).

- It names one plan. A token whose signature does not match (tampered, or made
  for another plan and edited) is refused as invalid (the page is a 404), so a link
  never shows another plan.
- It expires LINK_MAX_AGE after it was made: 30 days, or settings.PLAN_MANAGE_LINK_DAYS.
  An expired link says so (410) and asks the donor to use their latest email or ask
  the organisation, whose staff can send a fresh one (`plan_manage_link_send`).
- It can be revoked: each link carries the plan's `manage_link_version`, and
  raising it (`plan_manage_link_revoke`) refuses every link made before (410). The
  donor cancelling through a link does that, so that link stops working at once.

A link is emailed to the donor when a recurring gift on a form sets the plan up
(`plan_manage_link_email`, from payments.recurring.plan_create_from_payment) and
whenever staff send it again. Everything the donor changes goes through the plan
services in payments.recurring, with an actor naming the donor (`donor_actor`).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from organisations.services import audit_record
from payments import recurring
from payments.models import PLAN_FINAL_STATUSES, PauseReason, PlanPaymentMethod, PlanStatus, RecurringPlan
from together import stripe_gateway
from together.actors import Actor
from together.exceptions import ApplicationError, NotFound, ValidationFailed

log = logging.getLogger("together.payments.plan_links")

LINK_SALT = "together.payments.plan_manage"
LINK_DAYS_DEFAULT = 30
TOKEN_MAX_LENGTH = 200
PLAN_ID_RE = re.compile(r"^[a-z0-9]{8,40}$")
SETUP_INTENT_RE = re.compile(r"^seti_[A-Za-z0-9]{4,250}$")
SETUP_PURPOSE = "recurring_plan_card"

# How a frequency reads in a sentence: "your monthly gift", "$25 a month".
FREQUENCY_WORDS = {
    "WEEKLY": ("weekly", "a week"),
    "FORTNIGHTLY": ("fortnightly", "a fortnight"),
    "MONTHLY": ("monthly", "a month"),
    "QUARTERLY": ("quarterly", "a quarter"),
    "ANNUALLY": ("yearly", "a year"),
}


def link_max_age() -> dt.timedelta:
    return dt.timedelta(days=int(getattr(settings, "PLAN_MANAGE_LINK_DAYS", LINK_DAYS_DEFAULT)))


def frequency_adjective(frequency: str) -> str:
    return FREQUENCY_WORDS.get(frequency, (frequency.lower(), ""))[0]


def frequency_per(frequency: str) -> str:
    return FREQUENCY_WORDS.get(frequency, ("", frequency.lower()))[1]


def money(cents: int) -> str:
    whole, part = divmod(int(cents), 100)
    return f"${whole:,}" if part == 0 else f"${whole:,}.{part:02d}"


# --- tokens ----------------------------------------------------------------------------------

class _Signer(signing.TimestampSigner):
    """Django's TimestampSigner; `now` signs as of another moment (tests: a link made
    31 days ago)."""

    def __init__(self, *, now: dt.datetime | None = None):
        super().__init__(salt=LINK_SALT)
        self._now = now

    def timestamp(self):
        moment = self._now.timestamp() if self._now is not None else time.time()
        return signing.b62_encode(int(moment))


def plan_manage_token(*, plan: RecurringPlan, now: dt.datetime | None = None) -> str:
    """The plan's management token as of `now` (default: now), for its current link version."""
    return _Signer(now=now).sign(f"{plan.id}.{plan.manage_link_version}")


def plan_manage_url(*, plan: RecurringPlan, now: dt.datetime | None = None) -> str:
    return f"{settings.SITE_URL}/plans/{plan_manage_token(plan=plan, now=now)}"


def token_expires_at(token: str) -> dt.datetime | None:
    """When a (verified) token stops working."""
    try:
        stamp = token.rsplit(signing.Signer().sep, 2)[1]
        made = dt.datetime.fromtimestamp(signing.b62_decode(stamp), tz=dt.UTC)
    except (IndexError, ValueError):
        return None
    return made + link_max_age()


class LinkRefused(Exception):
    """A management link that does not open its plan: `reason` is `invalid` (tampered,
    unknown: a 404), `expired` or `revoked` (410: it was genuine once)."""

    def __init__(self, reason: str, plan: RecurringPlan | None = None):
        super().__init__(reason)
        self.reason = reason
        self.plan = plan


def plan_from_token(*, token: str, max_age: dt.timedelta | None = None) -> RecurringPlan:
    """The plan a management token names, or LinkRefused. The signature is checked
    before anything is looked up; the plan's current link version must match."""
    if not isinstance(token, str) or not token or len(token) > TOKEN_MAX_LENGTH:
        raise LinkRefused("invalid")
    expired = False
    try:
        value = _Signer().unsign(token, max_age=max_age if max_age is not None else link_max_age())
    except signing.SignatureExpired:
        expired = True
        value = _Signer().unsign(token)  # genuine (else BadSignature below), only too old
    except signing.BadSignature:
        raise LinkRefused("invalid") from None
    plan_id, _, version = value.rpartition(".")
    if not PLAN_ID_RE.fullmatch(plan_id) or not version.isdigit():
        raise LinkRefused("invalid")
    plan = (RecurringPlan.objects.unscoped("public page")
            .select_related("organisation", "organisation__live_organisation", "donor", "form")
            .filter(pk=plan_id).first())
    if plan is None:
        raise LinkRefused("invalid")
    if int(version) != plan.manage_link_version:
        raise LinkRefused("revoked", plan)
    if expired:
        raise LinkRefused("expired", plan)
    return plan


def donor_actor(plan: RecurringPlan, request_id: str = "") -> Actor:
    """Who acts through a management link: the plan's donor (no account: the link is the credential)."""
    return Actor(type="SYSTEM", id=plan.donor_id, label=f"Donor {plan.donor.display_name} (plan management link)",
                 request_id=request_id or "")


# --- revoking ---------------------------------------------------------------------------------

def plan_manage_link_revoke(*, plan: RecurringPlan) -> int:
    """Every management link made before stops working. Returns the new version."""
    RecurringPlan.objects.for_organisation(plan.organisation).filter(pk=plan.pk).update(
        manage_link_version=F("manage_link_version") + 1, updated_at=timezone.now())
    plan.manage_link_version = (RecurringPlan.objects.for_organisation(plan.organisation).filter(pk=plan.pk)
                                .values_list("manage_link_version", flat=True).get())
    return plan.manage_link_version


# --- emails -----------------------------------------------------------------------------------

def _email_body(plan: RecurringPlan, url: str, expires: dt.date, *, signup: bool) -> tuple[str, str]:
    organisation = plan.organisation.live
    adjective = frequency_adjective(plan.frequency)
    greeting = f"Dear {plan.donor.first_name}," if plan.donor.first_name else "Hello,"
    lines = [greeting, ""]
    if signup:
        lines.append(f"Thank you for your {adjective} gift of {money(plan.amount_cents)} to {organisation.name}. "
                     "Your first gift went through today.")
    else:
        lines.append(f"Here is the link to manage your {adjective} gift of {money(plan.amount_cents)} to {organisation.name}.")
    if plan.next_bill_date and plan.status in (PlanStatus.ACTIVE, PlanStatus.PAST_DUE):
        lines.append(f"Your next gift is due on {plan.next_bill_date.strftime('%-d %B %Y')}.")
    lines += [
        "",
        "To change the amount or how often you give, update your card, pause or cancel, open:",
        url,
        "",
        (f"This link is yours alone: please don't forward it. It works until {expires.strftime('%-d %B %Y')}; "
         f"after that, ask {organisation.name} to send you a new one."),
        "",
        organisation.name,
    ]
    where = " (sandbox)" if plan.organisation.is_sandbox else ""
    subject = (f"Your {adjective} gift to {organisation.name}{where}" if signup
               else f"Manage your {adjective} gift to {organisation.name}{where}")
    return subject, "\n".join(lines) + "\n"


def plan_manage_link_email(*, plan: RecurringPlan, signup: bool = False) -> bool:
    """Email the donor a fresh management link, once the surrounding transaction
    commits. False (nothing sent) when the donor has no email address."""
    email = (plan.donor.email or "").strip()
    if not email:
        return False
    now = timezone.now()
    url = plan_manage_url(plan=plan, now=now)
    expires = timezone.localtime(now + link_max_age()).date()
    subject, body = _email_body(plan, url, expires, signup=signup)

    def send():
        try:
            send_mail(subject, body, None, [email])
        except Exception:  # any mail failure: it must not undo the gift; staff can send it again
            log.exception("plan %s: the management link email could not be sent", plan.id)

    transaction.on_commit(send)
    return True


@transaction.atomic
def plan_manage_link_send(*, organisation, actor: Actor, plan_id: str) -> RecurringPlan:
    """Staff send the donor a fresh management link (the dashboard's *Send manage link*).
    Links sent before keep working until they expire."""
    plan = (RecurringPlan.objects.for_organisation(organisation).select_related("organisation", "donor")
            .filter(pk=plan_id).first())
    if plan is None:
        raise NotFound("Recurring plan not found.")
    if plan.status in PLAN_FINAL_STATUSES:
        raise ValidationFailed(f"This plan is {plan.get_status_display().lower()}: there is nothing for the donor to manage.",
                               param="status")
    if not (plan.donor.email or "").strip():
        raise ValidationFailed("The donor has no email address: add one on their record first.", param="donor_id",
                               reason="donor_without_email")
    plan_manage_link_email(plan=plan)
    audit_record(organisation=organisation, actor=actor, action="recurring_plan.manage_link_sent",
                 object_type="recurring_plan", object_id=plan.id,
                 after={"to": plan.donor.email, "link_version": plan.manage_link_version,
                        "valid_days": link_max_age().days})
    return plan


# --- what the donor does through the link ------------------------------------------------------

def donor_can_resume(plan: RecurringPlan) -> bool:
    """The donor resumes only their own pause (not a staff pause, nor a hold under the donor cap)."""
    return plan.can_resume and plan.pause_reason == PauseReason.DONOR


def frequencies_for(plan: RecurringPlan) -> list[str]:
    """The frequencies the donor may choose: the form's, when the plan came from one
    (and the plan's own, whatever it is); else every frequency."""
    from engage.models import Frequency

    offered = set(Frequency.values)
    form = plan.form
    if form is not None and form.allow_recurring and form.recurring_frequencies:
        offered = set(form.recurring_frequencies) & set(Frequency.values)
    offered.add(plan.frequency)
    return [f for f in Frequency.values if f in offered]


def amount_limits(plan: RecurringPlan) -> tuple[int, int]:
    """(smallest, largest) amount in cents the donor may set: the form's, else the card's."""
    from engage.models import MAXIMUM_CHARGE_CENTS

    low = recurring.CARD_MINIMUM_CENTS if plan.payment_method == PlanPaymentMethod.CARD else 100
    high = MAXIMUM_CHARGE_CENTS
    if plan.form is not None:
        low = max(low, plan.form.effective_minimum_cents)
        high = plan.form.effective_maximum_cents
    return low, high


def plan_donor_change(*, plan: RecurringPlan, actor: Actor, amount_cents: int | None = None,
                      frequency: str | None = None) -> RecurringPlan:
    """The donor changes the amount (from the next gift) and/or how often (the schedule
    starts again from the next gift's date), within what their form allows."""
    changes: dict = {}
    if amount_cents is not None and amount_cents != plan.amount_cents:
        low, high = amount_limits(plan)
        if amount_cents < low:
            raise ValidationFailed(f"The smallest gift is {money(low)}.", param="amount")
        if amount_cents > high:
            raise ValidationFailed(f"The largest gift is {money(high)}.", param="amount")
        changes["amount_cents"] = amount_cents
    if frequency is not None and frequency != plan.frequency:
        if frequency not in frequencies_for(plan):
            raise ValidationFailed("Choose one of the frequencies shown.", param="frequency")
        changes["frequency"] = frequency
    if not changes:
        return plan
    return recurring.plan_update(organisation=plan.organisation, actor=actor, plan_id=plan.id, **changes)


def plan_donor_pause(*, plan: RecurringPlan, actor: Actor) -> RecurringPlan:
    return recurring.plan_pause(organisation=plan.organisation, actor=actor, plan_id=plan.id, reason=PauseReason.DONOR,
                                detail="Paused by the donor through their management link.")


def plan_donor_resume(*, plan: RecurringPlan, actor: Actor) -> RecurringPlan:
    if plan.status == PlanStatus.PAUSED and plan.pause_reason != PauseReason.DONOR:
        raise ValidationFailed(f"{plan.organisation.live.name} paused this gift; please contact them to restart it.",
                               param="status")
    return recurring.plan_resume(organisation=plan.organisation, actor=actor, plan_id=plan.id)


@transaction.atomic
def plan_donor_cancel(*, plan: RecurringPlan, actor: Actor) -> RecurringPlan:
    """The donor cancels: the plan is CANCELED and every management link stops working."""
    plan = recurring.plan_cancel(organisation=plan.organisation, actor=actor, plan_id=plan.id,
                                 reason="Cancelled by the donor through their management link.")
    plan_manage_link_revoke(plan=plan)
    return plan


def _card_plan(plan: RecurringPlan) -> None:
    plan.guard("change")
    if plan.payment_method != PlanPaymentMethod.CARD or not plan.stripe_customer_id:
        raise ValidationFailed("This gift is not paid by card.", param="payment_method")


def plan_card_setup_start(*, plan: RecurringPlan) -> str:
    """A SetupIntent that saves a new card to the plan's Stripe customer; its client
    secret goes to Stripe.js (confirmCardSetup). Nothing changes on the plan yet."""
    _card_plan(plan)
    intent = stripe_gateway.setup_intent_create(
        plan.organisation, customer=plan.stripe_customer_id,
        metadata={"organisation_id": plan.organisation_id, "plan_id": plan.id, "purpose": SETUP_PURPOSE},
    )
    return intent.client_secret


def plan_card_setup_finish(*, plan: RecurringPlan, actor: Actor, setup_intent_id: str) -> RecurringPlan:
    """The donor's new card is saved (Stripe says the SetupIntent succeeded, for this
    plan's customer): the plan charges it from now on (payments.recurring.plan_payment_method_update;
    a failing or PAST_DUE plan is tried again on it)."""
    _card_plan(plan)
    if not isinstance(setup_intent_id, str) or not SETUP_INTENT_RE.fullmatch(setup_intent_id):
        raise ValidationFailed("setup_intent is not a SetupIntent id.", param="setup_intent")
    try:
        intent = stripe_gateway.to_dict(stripe_gateway.setup_intent_retrieve(plan.organisation, setup_intent_id=setup_intent_id))
    except stripe_gateway.PaymentRefused:
        raise ValidationFailed("That card setup is unknown.", param="setup_intent") from None
    customer = intent.get("customer")
    customer = customer.get("id") if isinstance(customer, dict) else customer
    metadata = intent.get("metadata") or {}
    if metadata.get("plan_id") != plan.id or customer != plan.stripe_customer_id:
        raise ValidationFailed("That card setup is not for this gift.", param="setup_intent")
    if intent.get("status") != "succeeded":
        raise ValidationFailed("The new card was not saved. Please try again.", param="setup_intent")
    method = intent.get("payment_method")
    method = method.get("id") if isinstance(method, dict) else method
    if method == plan.stripe_payment_method_id:
        return plan
    return recurring.plan_payment_method_update(organisation=plan.organisation, actor=actor, plan_id=plan.id,
                                                stripe_payment_method_id=method, stripe_customer_id=customer)


def plan_card_summary(*, plan: RecurringPlan) -> dict | None:
    """The saved card as the donor recognises it ({brand, last4, exp}), or None (no
    card, or Stripe cannot be reached just now: the page says less)."""
    if plan.payment_method != PlanPaymentMethod.CARD or not plan.stripe_payment_method_id:
        return None
    try:
        method = stripe_gateway.to_dict(stripe_gateway.payment_method_retrieve(
            plan.organisation, payment_method_id=plan.stripe_payment_method_id))
    except ApplicationError as exc:  # Stripe unreachable or refusing: the page still works without it
        log.warning("plan %s: card summary unavailable: %s", plan.id, exc)
        return None
    card = method.get("card") or {}
    if not card.get("last4"):
        return None
    return {"brand": (card.get("brand") or "card").title(), "last4": card["last4"],
            "exp": f"{int(card.get('exp_month') or 0):02d}/{str(card.get('exp_year') or '')[-2:]}"}

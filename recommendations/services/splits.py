"""Split gifts: one gift through a set, one Donation per recipient in its own books."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from compliance.services import public_refusal_message
from donations.countries import ISO_3166_ALPHA2
from donations.models import DonationType, Donor, PaymentMethod, Source, Status
from organisations.models import Organisation
from organisations.services import audit_record
from recommendations.models import Allocation, AmountMode, RecommendationSet, SplitGift, SplitGiftPart, SplitGiftStatus
from together.actors import Actor
from together.api.renderers import iso_date, iso_timestamp
from together.exceptions import Conflict, ValidationFailed
from recommendations.services._common import _system_actor, log
from recommendations.services.sets import MAX_AMOUNT_CENTS


# --- split gifts ----------------------------------------------------------------------------
#
# A gift through a set becomes one Donation per recipient, in each recipient
# organisation's own books, through donations.services (so every check in
# DONATION_CHECKS, caps included, applies per recipient and per donor), all in
# one transaction: every part or none.
#
# Card payment is a later issue. Until then:
# - the public giving form validates the gift exactly as recording it would
#   (the split is run and rolled back) and stores a PLEDGED split gift in the
#   recommending organisation only: no payment is taken and nothing is written
#   to any recipient's books;
# - staff of the recommending organisation record a gift received offline
#   (from scratch, or by fulfilling a pledge) with `recommendation_split_record`.

MIN_EDITABLE_AMOUNT_CENTS = 100
DONOR_REQUIRED = ("first_name", "last_name", "email", "address_line1", "suburb", "state", "postcode")
DONOR_OPTIONAL = ("address_line2", "country", "phone")


def clean_donor_details(details: dict) -> dict:
    out = {}
    for key in DONOR_REQUIRED + DONOR_OPTIONAL:
        value = details.get(key)
        out[key] = value.strip() if isinstance(value, str) else ""
    for key in DONOR_REQUIRED:
        if not out[key]:
            raise ValidationFailed(f"{key.replace('_', ' ').capitalize()} is required: disclosure needs the donor's name, "
                                   "email and address.", param=key)
    try:
        validate_email(out["email"])
    except DjangoValidationError:
        raise ValidationFailed("Email is not a valid address.", param="email") from None
    out["email"] = out["email"].lower()
    out["country"] = (out["country"] or "AU").upper()
    # Checked here, not only when a recipient creates a new donor: otherwise a bad
    # country would be refused for a new email and accepted for a known one.
    if out["country"] not in ISO_3166_ALPHA2:
        raise ValidationFailed("Country must be a 2-letter code such as AU.", param="country")
    limits = {"first_name": 100, "last_name": 100, "email": 254, "address_line1": 200, "address_line2": 200,
              "suburb": 100, "state": 50, "postcode": 12, "country": 2, "phone": 40}
    for key, limit in limits.items():
        if len(out[key]) > limit:
            raise ValidationFailed(f"{key} is at most {limit} characters.", param=key)
    return out


@dataclass(frozen=True)
class SplitLine:
    position: int
    allocation: Allocation
    amount_cents: int


def _split_lines(recommendation_set: RecommendationSet, allocations: list[Allocation], amounts: list[int] | None) -> list[SplitLine]:
    if not allocations:
        raise ValidationFailed("This recommendation set has no allocations.", param="allocations")
    mode = recommendation_set.amount_mode
    if mode == AmountMode.FIXED:
        fixed = [a.amount_cents for a in allocations]
        if amounts is not None and list(amounts) != fixed:
            raise ValidationFailed("This set's amounts are fixed.", param="allocations", reason="amounts_fixed")
        chosen = fixed
    else:
        if amounts is None or len(amounts) != len(allocations):
            raise ValidationFailed("Send one amount per allocation.", param="allocations")
        chosen = list(amounts)
        for index, amount in enumerate(chosen):
            param = f"allocations[{index}].amount_cents"
            if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
                raise ValidationFailed("Enter an amount in whole cents, or 0 to skip this recipient.", param=param)
            if 0 < amount < MIN_EDITABLE_AMOUNT_CENTS:
                raise ValidationFailed("Each amount is at least $1.00 (or 0 to skip this recipient).", param=param,
                                       reason="amount_too_small")
            if amount > MAX_AMOUNT_CENTS:
                raise ValidationFailed("This amount is too large.", param=param)
        if not any(chosen):
            raise ValidationFailed("Give a non-zero amount to at least one recipient.", param="allocations", reason="total_zero")
    lines = []
    for index, (allocation, amount) in enumerate(zip(allocations, chosen)):
        if amount and not allocation.link.is_active:
            raise ValidationFailed(f"{allocation.link.recipient_organisation.name} cannot receive funds through this set now.",
                                   param=f"allocations[{index}].recipient_org_account_link_id", reason="link_inactive")
        if amount:
            lines.append(SplitLine(position=index, allocation=allocation, amount_cents=amount))
    return lines


def _split_gift_render(gift: SplitGift) -> dict:
    parts = list(SplitGiftPart.objects.for_organisation(gift.organisation).filter(split_gift=gift).order_by("position"))
    return {
        "id": gift.id, "object": "split_gift", "recommendation_set_id": gift.recommendation_set_id, "status": gift.status,
        "total_cents": gift.total_cents, "currency": gift.currency, "donation_date": iso_date(gift.donation_date),
        "payment_reference": gift.payment_reference or None, "payment_method": gift.payment_method or None,
        "donor": gift.donor_details,
        "parts": [{"recipient_org_account_link_id": p.link_id, "recipient_organisation_id": p.recipient_organisation_id,
                   "amount_cents": p.amount_cents, "position": p.position, "donation_id": p.donation_id} for p in parts],
        "created_at": iso_timestamp(gift.created_at),
    }


def _recipient_donor(*, recipient: Organisation, actor: Actor, details: dict) -> Donor:
    """The donor in the recipient's books: found by email, or created. An existing
    donor's details are left as they are (the recommending organisation is not a
    trusted writer of another organisation's records)."""
    from donations.services import donor_create

    existing = Donor.objects.for_organisation(recipient).filter(email__iexact=details["email"]).order_by("created_at").first()
    if existing is not None:
        return existing
    fields = {k: details[k] for k in ("first_name", "last_name", "email", "address_line1", "address_line2", "suburb",
                                      "state", "postcode", "country", "phone") if details.get(k)}
    try:
        return donor_create(organisation=recipient, actor=actor, **fields)
    except Conflict:  # created concurrently
        return Donor.objects.for_organisation(recipient).get(email__iexact=details["email"])


def _retarget(exc: ValidationFailed, *, position: int, recipient: Organisation) -> ValidationFailed:
    param = exc.param or "amount_cents"
    if param in ("amount_cents", "donor_id", "donation_date"):
        param = f"allocations[{position}].{param}"
    extra = dict(exc.extra)
    extra.setdefault("recipient_organisation_id", recipient.id)
    retargeted = type(exc)(f"{recipient.name}: {exc.message}", param=param, **extra)
    # Raised in the recipient's books for this donor (found by email): what it says
    # may depend on the donor's records, so public pages show a fixed sentence
    # instead (compliance.services.public_refusal_message). Staff see it all.
    retargeted.donor_specific = True
    return retargeted


@transaction.atomic
def recommendation_split_record(*, organisation: Organisation, actor: Actor, recommendation_set_id: str, donor: dict,
                                amounts: list[int] | None = None, donation_date: dt.date | None = None,
                                payment_method: str = PaymentMethod.BANK_TRANSFER, payment_reference: str = "",
                                pledge_id: str | None = None) -> SplitGift:
    """Record a gift received for a set of `organisation`: one CONFIRMED MANUAL
    Donation per non-zero part in each recipient's books, all or nothing.
    `amounts` (one per allocation, in display order) is ignored for FIXED sets.
    With `pledge_id`, that PLEDGED gift of the set becomes this recorded gift."""
    from donations.services import donation_record

    recommendation_set = RecommendationSet.objects.for_organisation(organisation).select_for_update().filter(pk=recommendation_set_id).first()
    if recommendation_set is None:
        raise ValidationFailed(f"No recommendation set '{recommendation_set_id}' in this organisation.", param="recommendation_set_id")
    if not recommendation_set.is_active:
        raise ValidationFailed("This recommendation set was deleted and takes no new gifts.", param="recommendation_set_id",
                               reason="set_inactive")
    if payment_method not in PaymentMethod.values:
        raise ValidationFailed("payment_method is not a known method.", param="payment_method")
    payment_reference = (payment_reference or "").strip()[:100]
    details = clean_donor_details(donor)
    donation_date = donation_date or timezone.localdate()
    allocations = list(
        Allocation.objects.for_organisation(organisation).filter(recommendation_set=recommendation_set)
        .select_related("link", "link__recipient_organisation").order_by("position")
    )
    lines = _split_lines(recommendation_set, allocations, amounts)
    total = sum(line.amount_cents for line in lines)
    if pledge_id:
        gift = SplitGift.objects.for_organisation(organisation).select_for_update().filter(
            pk=pledge_id, recommendation_set=recommendation_set).first()
        if gift is None:
            raise ValidationFailed(f"No pledge '{pledge_id}' for this set.", param="pledge_id")
        if gift.status != SplitGiftStatus.PLEDGED:
            raise ValidationFailed("This pledge was already recorded.", param="pledge_id", reason="pledge_recorded")
        SplitGiftPart.objects.for_organisation(organisation).filter(split_gift=gift).delete()
        gift.status, gift.total_cents, gift.donation_date = SplitGiftStatus.RECORDED, total, donation_date
        gift.payment_method, gift.payment_reference, gift.donor_details = payment_method, payment_reference, details
        gift.recorded_at, gift.recorded_by_label = timezone.now(), actor.label
        gift.save()
    else:
        gift = SplitGift.objects.create(
            organisation=organisation, recommendation_set=recommendation_set, status=SplitGiftStatus.RECORDED,
            total_cents=total, currency=organisation.currency, donation_date=donation_date, payment_method=payment_method,
            payment_reference=payment_reference, donor_details=details, recorded_at=timezone.now(), recorded_by_label=actor.label,
        )
    recipient_actor = Actor(type="SYSTEM", id=gift.id, label=f"Split gift via {organisation.live.name}", request_id=actor.request_id)
    parts = []
    # Lock donors in a stable order (by recipient) whatever the display order,
    # so two gifts through differently ordered sets cannot deadlock.
    for line in sorted(lines, key=lambda ln: ln.allocation.link.recipient_organisation_id):
        recipient = line.allocation.link.recipient_organisation
        try:
            recipient_donor = _recipient_donor(recipient=recipient, actor=recipient_actor, details=details)
            donation = donation_record(
                organisation=recipient, actor=recipient_actor, donor_id=recipient_donor.id,
                donation_type=DonationType.MONETARY, amount_cents=line.amount_cents, donation_date=donation_date,
                source=Source.MANUAL, status=Status.CONFIRMED, payment_method=payment_method,
                reference=payment_reference or None,
                notes=f"Directed by {organisation.live.name} through recommendation set \"{recommendation_set.name}\".",
                metadata={"recommendation_set_id": recommendation_set.id, "split_gift_id": gift.id,
                          "recommending_organisation_id": organisation.id},
            )
        except ValidationFailed as exc:
            raise _retarget(exc, position=line.position, recipient=recipient) from None
        parts.append(SplitGiftPart(
            organisation=organisation, split_gift=gift, link=line.allocation.link, recipient_organisation=recipient,
            amount_cents=line.amount_cents, position=line.position, donation=donation,
        ))
    SplitGiftPart.objects.bulk_create(parts)
    audit_record(organisation=organisation, actor=actor, action="split_gift.recorded", object_type="split_gift",
                 object_id=gift.id, after=_split_gift_render(gift))
    return gift


class _DryRun(Exception):
    pass


def recommendation_split_validate(*, recommendation_set: RecommendationSet, donor: dict, amounts: list[int] | None) -> None:
    """Check a gift exactly as recording it would (every recipient's checks and
    caps for this donor), then roll everything back."""
    try:
        with transaction.atomic():
            recommendation_split_record(organisation=recommendation_set.organisation, actor=_system_actor("giving form check"),
                                        recommendation_set_id=recommendation_set.id, donor=donor, amounts=amounts,
                                        payment_method=PaymentMethod.CARD)
            raise _DryRun
    except _DryRun:
        pass


def recommendation_split_pledge(*, recommendation_set_id: str, donor: dict, amounts: list[int] | None,
                                request_id: str = "") -> SplitGift:
    """The public giving form: validate, then store a PLEDGED gift in the
    recommending organisation. No payment is taken (card payment is a later
    issue) and nothing is written to the recipients' books.

    A refusal that depends on the donor's records (a cap) keeps its detail for
    staff: it is logged and recorded in the refusing recipient's audit trail
    (`donation.refused`), after the pledge's rollback. The public page shows only
    compliance.services.public_refusal_message."""
    try:
        return _split_pledge(recommendation_set_id=recommendation_set_id, donor=donor, amounts=amounts,
                             request_id=request_id)
    except ValidationFailed as exc:
        if public_refusal_message(exc, organisation_name="") is not None:
            _public_refusal_record(exc, recommendation_set_id=recommendation_set_id, donor=donor, amounts=amounts,
                                   request_id=request_id)
        raise


def _public_refusal_record(exc: ValidationFailed, *, recommendation_set_id: str, donor: dict, amounts: list[int] | None,
                           request_id: str) -> None:
    recipient_id = exc.extra.get("recipient_organisation_id")
    recommendation_set = RecommendationSet.objects.select_related("organisation").filter(pk=recommendation_set_id).first()
    log.warning("public gift refused (donor-specific)", extra={
        "reason": exc.extra.get("reason"), "recipient_organisation_id": recipient_id,
        "recommendation_set_id": recommendation_set_id, "request_id": request_id})
    recipient = Organisation.objects.filter(pk=recipient_id).first() if recipient_id else None
    if recipient is None or recommendation_set is None:
        return
    email = (donor.get("email") or "").strip().lower() if isinstance(donor.get("email"), str) else ""
    known = Donor.objects.for_organisation(recipient).filter(email__iexact=email).order_by("created_at").first() if email else None
    via = recommendation_set.organisation.live
    audit_record(
        organisation=recipient,
        actor=Actor(type="SYSTEM", id=via.id, label=f"Giving form of {via.name}", request_id=request_id),
        action="donation.refused", object_type="donor", object_id=known.id if known else "",
        after={"source": "giving_form", "message": exc.message, "param": exc.param, **exc.extra,
               "donor_email": email, "donor_known": known is not None, "recommendation_set_id": recommendation_set_id,
               "recommending_organisation_id": via.id, "amounts_cents": list(amounts) if amounts is not None else None},
    )


@transaction.atomic
def _split_pledge(*, recommendation_set_id: str, donor: dict, amounts: list[int] | None, request_id: str) -> SplitGift:
    recommendation_set = RecommendationSet.objects.select_related("organisation").filter(pk=recommendation_set_id).first()
    if recommendation_set is None or not recommendation_set.is_active:
        raise ValidationFailed("This giving form is closed.", param="recommendation_set_id", reason="set_inactive")
    organisation = recommendation_set.organisation
    recommendation_split_validate(recommendation_set=recommendation_set, donor=donor, amounts=amounts)
    details = clean_donor_details(donor)
    allocations = list(
        Allocation.objects.for_organisation(organisation).filter(recommendation_set=recommendation_set)
        .select_related("link", "link__recipient_organisation").order_by("position")
    )
    lines = _split_lines(recommendation_set, allocations, amounts)
    gift = SplitGift.objects.create(
        organisation=organisation, recommendation_set=recommendation_set, status=SplitGiftStatus.PLEDGED,
        total_cents=sum(line.amount_cents for line in lines), currency=organisation.currency,
        donation_date=timezone.localdate(), payment_method=PaymentMethod.CARD, donor_details=details,
    )
    SplitGiftPart.objects.bulk_create([
        SplitGiftPart(organisation=organisation, split_gift=gift, link=line.allocation.link,
                      recipient_organisation=line.allocation.link.recipient_organisation, amount_cents=line.amount_cents,
                      position=line.position)
        for line in lines
    ])
    audit_record(organisation=organisation, actor=_system_actor(f"Giving form donor {details['email']}", request_id),
                 action="split_gift.pledged", object_type="split_gift", object_id=gift.id, after=_split_gift_render(gift))
    return gift

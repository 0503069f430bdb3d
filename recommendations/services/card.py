"""Split gifts by card: the public giving form of a set whose recommending
organisation and every recipient are connected to Stripe.

One PaymentIntent for the total, in the recommending organisation's name
(`payments.services.payment_start`, kind SPLIT); when it succeeds,
`payments.services.payment_sync` records one donation per part in each
recipient's own books and makes one Stripe transfer per part. No SplitGift is
stored for a card gift: the Payment (with its parts and their donations) is the
record, and the set's gifts page reads it (recommendations.selectors). So
payments never needs to call back into recommendations (recommendations may
import payments, never the reverse).
"""
from __future__ import annotations

from compliance.services import public_refusal_message
from recommendations.models import Allocation, RecommendationSet
from recommendations.selectors import giving_form_takes_cards
from recommendations.services.splits import (
    _public_refusal_record, _split_lines, clean_donor_details, recommendation_split_validate,
)
from together.exceptions import ValidationFailed

CARD_UNAVAILABLE = "Card payment isn't available for this giving form yet."


def recommendation_split_payment_start(*, recommendation_set_id: str, donor: dict, amounts: list[int] | None,
                                       attempt_key: str, request_id: str = "", tracking: dict | None = None):
    """Start a card payment for a gift through a set (the public giving form).

    Validated exactly as recording it would be (every recipient's checks and
    caps for this donor, all parts or none), then `payment_start` checks each
    part's cap room again and creates (or, for the same `attempt_key`, reuses)
    the PaymentIntent. Returns the `payments.models.Payment`.

    A refusal that depends on the donor's records (a cap) keeps its detail for
    staff (log + `donation.refused` in the refusing recipient's audit trail);
    the public page shows only compliance.services.public_refusal_message."""
    from payments.models import PaymentKind
    from payments.services import PartSpec, payment_start
    from donations.models import Source

    recommendation_set = RecommendationSet.objects.select_related("organisation").filter(pk=recommendation_set_id).first()
    if recommendation_set is None or not recommendation_set.is_active:
        raise ValidationFailed("This giving form is closed.", param="recommendation_set_id", reason="set_inactive")
    organisation = recommendation_set.organisation
    allocations = list(
        Allocation.objects.for_organisation(organisation).filter(recommendation_set=recommendation_set)
        .select_related("link", "link__recipient_organisation").order_by("position")
    )
    if not giving_form_takes_cards(recommendation_set=recommendation_set, allocations=allocations):
        raise ValidationFailed(CARD_UNAVAILABLE, param="stripe_account", reason="stripe_not_connected")
    try:
        recommendation_split_validate(recommendation_set=recommendation_set, donor=donor, amounts=amounts)
        details = clean_donor_details(donor)
        lines = _split_lines(recommendation_set, allocations, amounts)
        parts = [PartSpec(recipient_organisation=line.allocation.link.recipient_organisation, amount_cents=line.amount_cents)
                 for line in lines]
        return payment_start(
            organisation=organisation, kind=PaymentKind.SPLIT, source=Source.STRIPE, attempt_key=attempt_key,
            donor_details=details, parts=parts, recommendation_set_id=recommendation_set.id, request_id=request_id,
            tracking=tracking,
        )
    except ValidationFailed as exc:
        if public_refusal_message(exc, organisation_name="") is not None:
            _public_refusal_record(exc, recommendation_set_id=recommendation_set.id, donor=donor, amounts=amounts,
                                   request_id=request_id)
        raise

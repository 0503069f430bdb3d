"""Reads with logic for recommendations. Every query starts from an organisation
(the owner of the object, or, for a recipient's view of who links to it, the
recipient organisation)."""
from __future__ import annotations

from collections import defaultdict

from organisations.models import Organisation
from recommendations.models import (
    Allocation, DistributionPassphrase, Introduction, RecipientOrgAccountLink, RecommendationSet, SplitGift,
)
from recommendations.representations import (
    ALLOCATION_FIELDS, INTRODUCTION_FIELDS, LINK_FIELDS, SET_FIELDS, render_introduction, render_link, render_set,
)


def link_snapshot(*, link_id: str) -> dict:
    return render_link(RecipientOrgAccountLink.objects.filter(pk=link_id).values(*LINK_FIELDS).get())


def introduction_snapshot(*, introduction_id: str) -> dict:
    return render_introduction(Introduction.objects.filter(pk=introduction_id).values(*INTRODUCTION_FIELDS).get())


def render_set_rows(*, organisation: Organisation, rows: list[dict]) -> list[dict]:
    """Sets with their allocations, in one query for the allocations of the page."""
    if not rows:
        return []
    by_set: dict[str, list[dict]] = defaultdict(list)
    allocations = (
        Allocation.objects.for_organisation(organisation)
        .filter(recommendation_set_id__in=[r["id"] for r in rows])
        .order_by("recommendation_set_id", "position")
        .values(*ALLOCATION_FIELDS)
    )
    for allocation in allocations:
        by_set[allocation["recommendation_set_id"]].append(allocation)
    return [render_set(r, by_set[r["id"]], currency=organisation.currency) for r in rows]


def set_snapshot(*, organisation: Organisation, set_id: str) -> dict:
    row = RecommendationSet.objects.for_organisation(organisation).filter(pk=set_id).values(*SET_FIELDS).get()
    return render_set_rows(organisation=organisation, rows=[row])[0]


def passphrase_active(*, organisation: Organisation) -> DistributionPassphrase | None:
    return DistributionPassphrase.objects.for_organisation(organisation).filter(ended_at__isnull=True).first()


def links_to_recipient(*, recipient: Organisation) -> list[RecipientOrgAccountLink]:
    """Every organisation linked to `recipient` (for its distribution page)."""
    return list(
        RecipientOrgAccountLink.objects.filter(recipient_organisation=recipient)
        .select_related("organisation")
        .order_by("-created_at", "-id")
    )


def public_set_get(*, set_id: str) -> RecommendationSet | None:
    """A set for its public giving page, looked up by its unguessable id alone."""
    return RecommendationSet.objects.select_related("organisation").filter(pk=set_id).first()


def public_set_allocations(*, recommendation_set: RecommendationSet) -> list[Allocation]:
    return list(
        Allocation.objects.for_organisation(recommendation_set.organisation)
        .filter(recommendation_set=recommendation_set)
        .select_related("link", "link__recipient_organisation")
        .order_by("position")
    )


def split_gifts_for_set(*, organisation: Organisation, set_id: str, limit: int = 100) -> list[SplitGift]:
    return list(
        SplitGift.objects.for_organisation(organisation)
        .filter(recommendation_set_id=set_id)
        .prefetch_related("parts", "parts__recipient_organisation")
        .order_by("-created_at", "-id")[:limit]
    )


def sets_for_dashboard(*, organisation: Organisation) -> list[RecommendationSet]:
    return list(RecommendationSet.objects.for_organisation(organisation).filter(is_active=True).order_by("-created_at", "-id")[:200])


def links_for_set_editor(*, organisation: Organisation) -> list[RecipientOrgAccountLink]:
    """The organisation's active recipient accounts, for choosing a set's recipients."""
    return list(
        RecipientOrgAccountLink.objects.for_organisation(organisation).filter(is_active=True)
        .select_related("recipient_organisation").order_by("label", "id")
    )


def giving_form_takes_cards(*, recommendation_set: RecommendationSet, allocations: list[Allocation]) -> bool:
    """Card payment on a set's giving form: the recommending organisation and
    every recipient of the set have a connected Stripe account, on the same side
    (a sandbox's card money only ever goes to sandboxes, a live one's to live ones)."""
    organisation = recommendation_set.organisation
    return (bool(allocations) and organisation.stripe_connected
            and all(a.link.recipient_organisation.stripe_connected
                    and a.link.recipient_organisation.is_sandbox == organisation.is_sandbox for a in allocations))


def card_gifts_for_set(*, organisation: Organisation, set_id: str, limit: int = 100) -> list:
    """A set's gifts by card: the recommending organisation's SPLIT payments for
    the set (payments.models.Payment, with their parts, each part's recipient and
    donation), newest first. Attempts the donor never paid (no card confirmed
    yet) are left out."""
    from payments.models import Payment, PaymentKind, PaymentStatus

    return list(
        Payment.objects.for_organisation(organisation)
        .filter(kind=PaymentKind.SPLIT, recommendation_set_id=set_id)
        .exclude(status=PaymentStatus.REQUIRES_PAYMENT)
        .prefetch_related("parts", "parts__recipient_organisation")
        .order_by("-created_at", "-id")[:limit]
    )

"""Recommendation sets and their allocations."""
from __future__ import annotations

from typing import Any
from django.db import transaction
from django.utils import timezone
from organisations.models import Organisation
from recommendations.models import Allocation, AmountMode, RecipientOrgAccountLink, RecommendationSet
from recommendations.selectors import set_snapshot
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.events import event_record


# --- recommendation sets --------------------------------------------------------------------

MAX_ALLOCATIONS = 50
MAX_AMOUNT_CENTS = 10**11  # $1bn per allocation: far beyond any cap, well inside BIGINT


def _clean_allocations(*, organisation: Organisation, amount_mode: str, allocations: Any) -> list[tuple[RecipientOrgAccountLink, int]]:
    if not isinstance(allocations, list) or not allocations:
        raise ValidationFailed("A recommendation set needs at least one allocation.", param="allocations")
    if len(allocations) > MAX_ALLOCATIONS:
        raise ValidationFailed(f"A recommendation set has at most {MAX_ALLOCATIONS} allocations.", param="allocations")
    ids = [a.get("recipient_org_account_link_id") for a in allocations]
    links = {
        link.id: link
        for link in RecipientOrgAccountLink.objects.for_organisation(organisation).select_for_update()
        .select_related("recipient_organisation").filter(pk__in=[i for i in ids if isinstance(i, str)])
    }
    seen: dict[str, int] = {}
    out = []
    for index, allocation in enumerate(allocations):
        link_param = f"allocations[{index}].recipient_org_account_link_id"
        amount_param = f"allocations[{index}].amount_cents"
        link = links.get(allocation.get("recipient_org_account_link_id"))
        if link is None:
            raise ValidationFailed(
                f"No recipient account '{allocation.get('recipient_org_account_link_id')}' in this organisation; "
                "use an id from GET /api/v1/recipient-accounts.", param=link_param)
        if not link.is_active:
            raise ValidationFailed(f"Recipient account {link.id} ({link.recipient_organisation.name}) is not active.",
                                   param=link_param, reason="link_inactive")
        if link.recipient_organisation_id in seen:
            raise ValidationFailed(
                f"{link.recipient_organisation.name} is already allocated at allocations[{seen[link.recipient_organisation_id]}]; "
                "a recipient appears at most once per set.", param=link_param, reason="duplicate_recipient")
        seen[link.recipient_organisation_id] = index
        amount = allocation.get("amount_cents")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0 or amount > MAX_AMOUNT_CENTS:
            raise ValidationFailed(f"amount_cents must be an integer from 0 to {MAX_AMOUNT_CENTS}.", param=amount_param)
        _check_amount_for_mode(amount_mode, amount, param=amount_param)
        out.append((link, amount))
    return out


def _check_amount_for_mode(amount_mode: str, amount: int, *, param: str) -> None:
    if amount_mode == AmountMode.OPEN and amount != 0:
        raise ValidationFailed("An OPEN set takes amount_cents 0 on every allocation: the donor enters each amount.",
                               param=param, reason="open_amount_not_zero")
    if amount_mode in (AmountMode.FIXED, AmountMode.SUGGESTED) and amount <= 0:
        raise ValidationFailed(f"A {amount_mode} set needs amount_cents greater than 0 on every allocation.",
                               param=param, reason="amount_required")


def _clean_set_fields(fields: dict) -> dict:
    out = {}
    if "name" in fields:
        name = (fields["name"] or "").strip()
        if not name:
            raise ValidationFailed("name must not be empty.", param="name")
        out["name"] = name[:200]
    if "description" in fields:
        out["description"] = (fields["description"] or "").strip()
    if "amount_mode" in fields:
        mode = fields["amount_mode"] or AmountMode.FIXED
        if mode not in AmountMode.values:
            raise ValidationFailed("amount_mode must be FIXED, SUGGESTED or OPEN.", param="amount_mode")
        out["amount_mode"] = mode
    return out


def _write_allocations(recommendation_set: RecommendationSet, cleaned: list[tuple[RecipientOrgAccountLink, int]]) -> None:
    Allocation.objects.for_organisation(recommendation_set.organisation).filter(recommendation_set=recommendation_set).delete()
    Allocation.objects.bulk_create([
        Allocation(organisation=recommendation_set.organisation, recommendation_set=recommendation_set, link=link,
                   amount_cents=amount, position=position)
        for position, (link, amount) in enumerate(cleaned)
    ])


@transaction.atomic
def recommendation_set_create(*, organisation: Organisation, actor: Actor, name: str, allocations: list[dict],
                              amount_mode: str = AmountMode.FIXED, description: str | None = None) -> RecommendationSet:
    fields = _clean_set_fields({"name": name, "description": description, "amount_mode": amount_mode})
    cleaned = _clean_allocations(organisation=organisation, amount_mode=fields["amount_mode"], allocations=allocations)
    recommendation_set = RecommendationSet.objects.create(organisation=organisation, **fields)
    _write_allocations(recommendation_set, cleaned)
    event_record(organisation=organisation, actor=actor, type="recommendation_set.created", object_type="recommendation_set",
                 object_id=recommendation_set.id, after=set_snapshot(organisation=organisation, set_id=recommendation_set.id))
    return recommendation_set


def _set_for_update(organisation: Organisation, set_id: str) -> RecommendationSet:
    recommendation_set = RecommendationSet.objects.for_organisation(organisation).select_for_update().filter(pk=set_id).first()
    if recommendation_set is None:
        raise NotFound("Recommendation set not found.")
    return recommendation_set


@transaction.atomic
def recommendation_set_update(*, organisation: Organisation, actor: Actor, set_id: str, **changes) -> RecommendationSet:
    """Edit a set. `allocations`, when sent, replaces the whole list at once (in
    this transaction); a mode change alone must suit the current amounts."""
    unknown = set(changes) - {"name", "description", "amount_mode", "allocations"}
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name} cannot be changed.", param=name)
    recommendation_set = _set_for_update(organisation, set_id)
    if not recommendation_set.is_active:
        raise Conflict(f"Recommendation set {recommendation_set.id} was deleted; deleted sets are read-only.")
    before = set_snapshot(organisation=organisation, set_id=recommendation_set.id)
    fields = _clean_set_fields({k: v for k, v in changes.items() if k != "allocations"})
    mode = fields.get("amount_mode", recommendation_set.amount_mode)
    replace = None
    if "allocations" in changes:
        cleaned = _clean_allocations(organisation=organisation, amount_mode=mode, allocations=changes["allocations"])
        current = [(a["recipient_org_account_link_id"], a["amount_cents"]) for a in before["allocations"]]
        if [(link.id, amount) for link, amount in cleaned] != current:
            replace = cleaned
    elif mode != recommendation_set.amount_mode:
        for index, allocation in enumerate(before["allocations"]):
            try:
                _check_amount_for_mode(mode, allocation["amount_cents"], param="amount_mode")
            except ValidationFailed as exc:
                raise ValidationFailed(
                    f"The current allocations do not suit amount_mode {mode} (allocations[{index}]): send allocations "
                    "with the new amounts in the same request.", param="amount_mode", reason=exc.extra.get("reason")) from None
    dirty = [k for k, v in fields.items() if getattr(recommendation_set, k) != v]
    if not dirty and replace is None:
        return recommendation_set
    for key in dirty:
        setattr(recommendation_set, key, fields[key])
    recommendation_set.save(update_fields=[*dirty, "updated_at"])
    if replace is not None:
        _write_allocations(recommendation_set, replace)
    event_record(organisation=organisation, actor=actor, type="recommendation_set.updated", object_type="recommendation_set",
                 object_id=recommendation_set.id, before=before,
                 after=set_snapshot(organisation=organisation, set_id=recommendation_set.id))
    return recommendation_set


@transaction.atomic
def recommendation_set_delete(*, organisation: Organisation, actor: Actor, set_id: str) -> RecommendationSet:
    """Deactivate: gone from lists and its giving form closes; still retrievable
    (is_active false) for the gifts that used it. Deleting twice changes nothing."""
    recommendation_set = _set_for_update(organisation, set_id)
    if not recommendation_set.is_active:
        return recommendation_set
    before = set_snapshot(organisation=organisation, set_id=recommendation_set.id)
    recommendation_set.is_active = False
    recommendation_set.deleted_at = timezone.now()
    recommendation_set.save(update_fields=["is_active", "deleted_at", "updated_at"])
    event_record(organisation=organisation, actor=actor, type="recommendation_set.deleted", object_type="recommendation_set",
                 object_id=recommendation_set.id, before=before,
                 after=set_snapshot(organisation=organisation, set_id=recommendation_set.id))
    return recommendation_set



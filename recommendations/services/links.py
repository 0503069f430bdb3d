"""Distribution passphrases, the failed-attempt limit, and recipient account links."""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from django.db import IntegrityError, transaction
from django.utils import timezone
from organisations.models import Organisation
from organisations.services import audit_record
from recommendations.models import DeactivatedBy, DistributionPassphrase, Introduction, RecipientOrgAccountLink
from recommendations.selectors import link_snapshot
from together.actors import Actor
from together.api.renderers import iso_timestamp
from together.exceptions import Conflict, NotFound, RateLimited, ValidationFailed
from together.ratelimit import LimiterUnavailable, window_refund, window_reserve
from webhooks.events import event_record
from recommendations.services._common import _UNSET, ServiceUnavailable, log


# --- distribution passphrases ----------------------------------------------------
#
# A passphrase is PASSPHRASE_WORDS words drawn with `secrets` from the 2048-word
# BIP-39 English list shipped in recommendations/wordlist.txt: 6 × 11 = 66 bits.
# It is stored only as SHA-256 of its normal form (lower case, words joined by
# "-"), looked up by that hash. A fast hash is enough here, as for API keys: the
# secret is random with 66 bits of entropy (no dictionary to try), online
# guessing is limited to FAILED_ATTEMPT_LIMIT per organisation per hour, and an
# offline search of 2^66 hashes is out of reach. A salted slow hash would force
# trying every active passphrase on each exchange, for no real gain.

WORDLIST_PATH = Path(__file__).resolve().parent.parent / "wordlist.txt"
PASSPHRASE_WORDS = 6
FAILED_ATTEMPT_LIMIT = 10
FAILED_ATTEMPT_WINDOW_SECONDS = 3600


@functools.lru_cache(maxsize=1)
def wordlist() -> tuple[str, ...]:
    words = tuple(w.strip() for w in WORDLIST_PATH.read_text(encoding="utf-8").splitlines() if w.strip())
    if len(set(words)) < 2048:
        raise RuntimeError("recommendations/wordlist.txt must hold at least 2048 distinct words")
    return words


def passphrase_entropy_bits() -> float:
    import math

    return PASSPHRASE_WORDS * math.log2(len(set(wordlist())))


def passphrase_normalise(text: str) -> str:
    return "-".join(w for w in re.split(r"[\s\-_.,;:]+", (text or "").strip().lower()) if w)


def passphrase_hash(text: str) -> str:
    return hashlib.sha256(passphrase_normalise(text).encode()).hexdigest()


@dataclass(frozen=True)
class CreatedPassphrase:
    passphrase: DistributionPassphrase
    plaintext: str


def _passphrase_render(p: DistributionPassphrase) -> dict:
    return {
        "id": p.id, "object": "distribution_passphrase", "word_count": p.word_count, "is_active": p.ended_at is None,
        "end_reason": p.end_reason, "created_at": iso_timestamp(p.created_at), "ended_at": iso_timestamp(p.ended_at),
    }


def _lock_organisation(organisation: Organisation) -> None:
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()


@transaction.atomic
def distribution_passphrase_generate(*, organisation: Organisation, actor: Actor) -> CreatedPassphrase:
    """Make a new passphrase; the active one, if any, stops working (rotated).
    The plaintext is returned once and never stored."""
    _lock_organisation(organisation)
    current = DistributionPassphrase.objects.for_organisation(organisation).filter(ended_at__isnull=True).first()
    if current is not None:
        current.ended_at = timezone.now()
        current.end_reason = DistributionPassphrase.EndReason.ROTATED
        current.save(update_fields=["ended_at", "end_reason", "updated_at"])
        audit_record(organisation=organisation, actor=actor, action="distribution_passphrase.rotated",
                     object_type="distribution_passphrase", object_id=current.id, after=_passphrase_render(current))
    words = wordlist()
    plaintext = " ".join(secrets.choice(words) for _ in range(PASSPHRASE_WORDS))
    created = DistributionPassphrase.objects.create(
        organisation=organisation, hashed=passphrase_hash(plaintext), word_count=PASSPHRASE_WORDS,
        created_by=actor.user if actor.type == "USER" else None,
    )
    audit_record(organisation=organisation, actor=actor, action="distribution_passphrase.created",
                 object_type="distribution_passphrase", object_id=created.id, after=_passphrase_render(created))
    return CreatedPassphrase(passphrase=created, plaintext=plaintext)


@transaction.atomic
def distribution_passphrase_revoke(*, organisation: Organisation, actor: Actor) -> DistributionPassphrase | None:
    """Stop the active passphrase without making a new one. Existing links stay."""
    _lock_organisation(organisation)
    current = DistributionPassphrase.objects.for_organisation(organisation).filter(ended_at__isnull=True).first()
    if current is None:
        return None
    current.ended_at = timezone.now()
    current.end_reason = DistributionPassphrase.EndReason.REVOKED
    current.save(update_fields=["ended_at", "end_reason", "updated_at"])
    audit_record(organisation=organisation, actor=actor, action="distribution_passphrase.revoked",
                 object_type="distribution_passphrase", object_id=current.id, after=_passphrase_render(current))
    return current


# --- the failed-attempt limit -------------------------------------------------------
#
# Redis, one fixed window per organisation that starts at its first counted
# attempt (together.ratelimit's window). Every exchange first reserves an attempt
# atomically (INCR, and EXPIRE when the key is new); an exchange whose passphrase
# turned out right (success, self-link, existing link) gives its attempt back. So concurrent guesses can
# never get more than FAILED_ATTEMPT_LIMIT wrong tries into one window.
# With Redis down the exchange is refused (503): a guess limit that fails open
# is no limit.

def _attempts_key(organisation: Organisation) -> str:
    return f"together:recipient-link-attempts:{organisation.id}"


def _redis():
    from together.redis import client

    return client()


def _attempt_reserve(organisation: Organisation) -> None:
    try:
        result = window_reserve(key=_attempts_key(organisation), limit=FAILED_ATTEMPT_LIMIT,
                                window_seconds=FAILED_ATTEMPT_WINDOW_SECONDS, redis_client=_redis())
    except LimiterUnavailable as exc:
        log.warning("passphrase attempt limiter unavailable: %s", exc)
        raise ServiceUnavailable("Passphrase exchange is temporarily unavailable. Retry in a minute.") from None
    if not result.allowed:
        retry_after = result.retry_after
        raise RateLimited(
            f"Too many wrong passphrases: this organisation may try {FAILED_ATTEMPT_LIMIT} wrong passphrases an hour. "
            f"Retry after {retry_after} s.",
            retry_after=retry_after, param="passphrase",
        )


def _attempt_refund(organisation: Organisation) -> None:
    window_refund(key=_attempts_key(organisation), redis_client=_redis())


def failed_attempts_reset(*, organisation: Organisation) -> None:
    """For support (and tests): clear an organisation's failed-attempt counter."""
    _redis().delete(_attempts_key(organisation))


# --- recipient account links ----------------------------------------------------------

def _clean_label(label: Any, *, param: str = "label") -> str:
    label = (label or "").strip() if isinstance(label, str) else ""
    if not label:
        raise ValidationFailed("label must not be empty.", param=param)
    if len(label) > 200:
        raise ValidationFailed("label is at most 200 characters.", param=param)
    return label


def _existing_link_conflict(link: RecipientOrgAccountLink, recipient: Organisation) -> Conflict:
    return Conflict(
        f"This organisation is already linked to {recipient.name}: recipient account {link.id} "
        f"(\"{link.label}\", {'active' if link.is_active else 'inactive'}).",
        existing_id=link.id,
    )


def _link_create(*, organisation: Organisation, recipient: Organisation, actor: Actor, label: str,
                 via: str, introduction: Introduction | None = None,
                 passphrase: DistributionPassphrase | None = None) -> RecipientOrgAccountLink:
    existing = RecipientOrgAccountLink.objects.for_organisation(organisation).filter(recipient_organisation=recipient).first()
    if existing is not None:
        raise _existing_link_conflict(existing, recipient)
    try:
        with transaction.atomic():
            link = RecipientOrgAccountLink.objects.create(
                organisation=organisation, recipient_organisation=recipient, label=label,
                introduction=introduction, passphrase=passphrase,
            )
    except IntegrityError:
        existing = RecipientOrgAccountLink.objects.for_organisation(organisation).filter(recipient_organisation=recipient).first()
        if existing is not None:
            raise _existing_link_conflict(existing, recipient) from None
        raise
    event_record(organisation=organisation, actor=actor, type="recipient_org_account_link.created",
                 object_type="recipient_org_account_link", object_id=link.id, after=link_snapshot(link_id=link.id))
    # The recipient's own trail: who may now direct funds to it.
    audit_record(organisation=recipient, actor=Actor(type="SYSTEM", id=organisation.id, label=f"Linked by {organisation.name}",
                                                     request_id=actor.request_id),
                 action="distribution_link.created", object_type="recipient_org_account_link", object_id=link.id,
                 after={"linked_organisation_id": organisation.id, "linked_organisation_name": organisation.name,
                        "via": via, "introduction_id": introduction.id if introduction else None})
    return link


class _WrongPassphrase(Exception):
    pass


def recipient_link_exchange(*, organisation: Organisation, actor: Actor, passphrase: str, label: str) -> RecipientOrgAccountLink:
    """Exchange a recipient's distribution passphrase for a link owned by `organisation`.

    Wrong, rotated or revoked passphrases, and a passphrase of the other mode
    (live from sandbox or sandbox from live), are all the same 400 with
    `param: passphrase`, and each counts toward the organisation's limit of
    FAILED_ATTEMPT_LIMIT an hour (then 429 with Retry-After)."""
    label = _clean_label(label)
    if not isinstance(passphrase, str) or not passphrase_normalise(passphrase):
        raise ValidationFailed("passphrase must not be empty.", param="passphrase")
    _attempt_reserve(organisation)
    wrong = False
    try:
        return _exchange(organisation=organisation, actor=actor, passphrase=passphrase, label=label)
    except _WrongPassphrase:
        wrong = True
        raise ValidationFailed(
            "This passphrase is not valid. It may have been mistyped, rotated or revoked; ask the recipient "
            "organisation for its current distribution passphrase.",
            param="passphrase", reason="passphrase_invalid",
        ) from None
    finally:
        if not wrong:
            _attempt_refund(organisation)


@transaction.atomic
def _exchange(*, organisation: Organisation, actor: Actor, passphrase: str, label: str) -> RecipientOrgAccountLink:
    found = (
        DistributionPassphrase.objects.select_related("organisation")
        .filter(hashed=passphrase_hash(passphrase), ended_at__isnull=True)
        .first()
    )
    if found is None or found.organisation.is_sandbox != organisation.is_sandbox:
        raise _WrongPassphrase
    recipient = found.organisation
    if recipient.id == organisation.id:
        raise ValidationFailed("This is your own organisation's passphrase: an organisation cannot link to itself.",
                               param="passphrase", reason="self_link")
    return _link_create(organisation=organisation, recipient=recipient, actor=actor, label=label, via="passphrase",
                        passphrase=found)


def _link_for_update(organisation: Organisation, link_id: str) -> RecipientOrgAccountLink:
    link = RecipientOrgAccountLink.objects.for_organisation(organisation).select_for_update().filter(pk=link_id).first()
    if link is None:
        raise NotFound("Recipient account not found.")
    return link


@transaction.atomic
def recipient_link_update(*, organisation: Organisation, actor: Actor, link_id: str, label: Any = _UNSET,
                          is_active: Any = _UNSET) -> RecipientOrgAccountLink:
    """The owner renames a link or turns it off and on. A link the recipient
    deactivated stays off until the recipient turns it back on."""
    link = _link_for_update(organisation, link_id)
    before = link_snapshot(link_id=link.id)
    changed = []
    if label is not _UNSET:
        label = _clean_label(label)
        if label != link.label:
            link.label = label
            changed.append("label")
    if is_active is not _UNSET:
        if is_active and not link.is_active:
            link.guard("owner_reactivate")
            link.is_active, link.deactivated_by = True, None
            changed += ["is_active", "deactivated_by"]
        elif not is_active and link.is_active:
            link.is_active, link.deactivated_by = False, DeactivatedBy.OWNER
            changed += ["is_active", "deactivated_by"]
    if not changed:
        return link
    link.save(update_fields=[*changed, "updated_at"])
    event_record(organisation=organisation, actor=actor, type="recipient_org_account_link.updated",
                 object_type="recipient_org_account_link", object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
    return link


@transaction.atomic
def recipient_link_set_active_by_recipient(*, recipient: Organisation, actor: Actor, link_id: str, active: bool) -> RecipientOrgAccountLink:
    """The recipient (from its distribution page) stops or restarts a link to it."""
    link = (
        RecipientOrgAccountLink.objects.select_for_update().select_related("organisation")
        .filter(recipient_organisation=recipient, pk=link_id).first()
    )
    if link is None:
        raise NotFound("No such link to this organisation.")
    before = link_snapshot(link_id=link.id)
    if active:
        if not link.can_recipient_reactivate:
            return link
        link.is_active, link.deactivated_by = True, None
    else:
        if not link.can_recipient_deactivate:
            return link
        link.is_active, link.deactivated_by = False, DeactivatedBy.RECIPIENT
    link.save(update_fields=["is_active", "deactivated_by", "updated_at"])
    owner_actor = Actor(type="SYSTEM", id=recipient.id, label=f"Recipient organisation {recipient.name}", request_id=actor.request_id)
    event_record(organisation=link.organisation, actor=owner_actor, type="recipient_org_account_link.updated",
                 object_type="recipient_org_account_link", object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
    audit_record(organisation=recipient, actor=actor, action="distribution_link." + ("reactivated" if active else "deactivated"),
                 object_type="recipient_org_account_link", object_id=link.id,
                 after={"linked_organisation_id": link.organisation_id, "is_active": link.is_active})
    return link



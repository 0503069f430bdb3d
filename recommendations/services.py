"""Every state change of recommendations: distribution passphrases, recipient
account links, introductions, recommendation sets and split gifts.

The API, the dashboard pages, the admin and the Celery sweep all call these.
Each writes an audit entry whose `action` is the dotted event type and whose
`after` is the object exactly as the API renders it.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from donations.models import DonationType, Donor, PaymentMethod, Source, Status
from organisations.models import Organisation, Role
from organisations.selectors import role_for
from organisations.services import audit_record
from recommendations.models import (
    OPEN_INTRODUCTION_STATES, Allocation, AmountMode, DeactivatedBy, DistributionPassphrase, Introduction,
    IntroductionStatus, RecipientOrgAccountLink, RecommendationSet, SplitGift, SplitGiftPart, SplitGiftStatus,
)
from recommendations.selectors import introduction_snapshot, link_snapshot, set_snapshot
from together.actors import Actor
from together.api.renderers import iso_date, iso_timestamp
from together.exceptions import ApplicationError, Conflict, NotFound, RateLimited, ValidationFailed

log = logging.getLogger("together.recommendations")

_UNSET: Any = object()


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    default_message = "A dependency is temporarily unavailable. Retry after a short wait."


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

WORDLIST_PATH = Path(__file__).with_name("wordlist.txt")
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
# attempt. Every exchange first reserves an attempt atomically (INCR, and EXPIRE
# when the key is new); an exchange whose passphrase turned out right (success,
# self-link, existing link) gives its attempt back. So concurrent guesses can
# never get more than FAILED_ATTEMPT_LIMIT wrong tries into one window.
# With Redis down the exchange is refused (503): a guess limit that fails open
# is no limit.

_RESERVE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local ttl = redis.call('TTL', KEYS[1])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, ttl}
end
return {1, ttl}
"""
_REFUND_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


def _attempts_key(organisation: Organisation) -> str:
    return f"together:recipient-link-attempts:{organisation.id}"


def _redis():
    from together.redis import client

    return client()


def _attempt_reserve(organisation: Organisation) -> None:
    try:
        allowed, ttl = _redis().eval(_RESERVE_LUA, 1, _attempts_key(organisation), FAILED_ATTEMPT_LIMIT, FAILED_ATTEMPT_WINDOW_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any Redis failure
        log.warning("passphrase attempt limiter unavailable: %s", exc)
        raise ServiceUnavailable("Passphrase exchange is temporarily unavailable. Retry in a minute.") from None
    if not int(allowed):
        retry_after = max(int(ttl), 1)
        raise RateLimited(
            f"Too many wrong passphrases: this organisation may try {FAILED_ATTEMPT_LIMIT} wrong passphrases an hour. "
            f"Retry after {retry_after} s.",
            retry_after=retry_after, param="passphrase",
        )


def _attempt_refund(organisation: Organisation) -> None:
    try:
        _redis().eval(_REFUND_LUA, 1, _attempts_key(organisation))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not refund a passphrase attempt: %s", exc)


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
    audit_record(organisation=organisation, actor=actor, action="recipient_org_account_link.created",
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
            if link.deactivated_by == DeactivatedBy.RECIPIENT:
                raise ValidationFailed(
                    "The recipient organisation deactivated this link; only it can reactivate it.",
                    param="is_active", reason="deactivated_by_recipient",
                )
            link.is_active, link.deactivated_by = True, None
            changed += ["is_active", "deactivated_by"]
        elif not is_active and link.is_active:
            link.is_active, link.deactivated_by = False, DeactivatedBy.OWNER
            changed += ["is_active", "deactivated_by"]
    if not changed:
        return link
    link.save(update_fields=[*changed, "updated_at"])
    audit_record(organisation=organisation, actor=actor, action="recipient_org_account_link.updated",
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
        if link.is_active or link.deactivated_by != DeactivatedBy.RECIPIENT:
            return link
        link.is_active, link.deactivated_by = True, None
    else:
        if link.deactivated_by == DeactivatedBy.RECIPIENT:
            return link
        link.is_active, link.deactivated_by = False, DeactivatedBy.RECIPIENT
    link.save(update_fields=["is_active", "deactivated_by", "updated_at"])
    owner_actor = Actor(type="SYSTEM", id=recipient.id, label=f"Recipient organisation {recipient.name}", request_id=actor.request_id)
    audit_record(organisation=link.organisation, actor=owner_actor, action="recipient_org_account_link.updated",
                 object_type="recipient_org_account_link", object_id=link.id, before=before, after=link_snapshot(link_id=link.id))
    audit_record(organisation=recipient, actor=actor, action="distribution_link." + ("reactivated" if active else "deactivated"),
                 object_type="recipient_org_account_link", object_id=link.id,
                 after={"linked_organisation_id": link.organisation_id, "is_active": link.is_active})
    return link


# --- introductions ------------------------------------------------------------------------
#
# An introduction lives INTRODUCTION_TTL (14 days) from creation. The hourly
# sweep moves every pending, viewed or accepted introduction past its expiry to
# `expired`; the invitee's pages also check the expiry, so an introduction is
# never accepted or linked late even between two sweeps. The invite link carries
# a random token (256 bits); only its SHA-256 is stored.

INTRODUCTION_TTL = dt.timedelta(days=14)


def token_hash(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def introduction_invite_url(token: str) -> str:
    return f"{settings.SITE_URL}/introductions/{token}"


@dataclass(frozen=True)
class CreatedIntroduction:
    introduction: Introduction
    token: str


def _intro_audit(introduction: Introduction, actor: Actor, action: str, before: dict | None = None) -> None:
    audit_record(organisation=introduction.organisation, actor=actor, action=action, object_type="introduction",
                 object_id=introduction.id, before=before, after=introduction_snapshot(introduction_id=introduction.id))


def _send_invite_email(*, introduction_id: str, token: str) -> None:
    introduction = Introduction.objects.select_related("organisation").get(pk=introduction_id)
    inviter = introduction.organisation
    lines = [
        "Hello" + (f" {introduction.invitee_org_name_hint}" if introduction.invitee_org_name_hint else "") + ",",
        "",
        f"{inviter.live.name} would like to direct donations to your organisation through Together.",
    ]
    if introduction.invitee_message:
        lines += ["", "Their message:", "", introduction.invitee_message]
    lines += [
        "",
        "Open this link to sign in or create an account, and choose the organisation that should receive the funds:",
        "",
        introduction_invite_url(token),
        "",
        f"The link works until {timezone.localtime(introduction.expires_at).strftime('%d %B %Y, %H:%M %Z')}. "
        "If you were not expecting this, you can ignore this email.",
    ]
    if inviter.is_sandbox:
        lines += ["", "(Sent from a Together sandbox: a test introduction, no real money moves.)"]
    send_mail(
        subject=f"{inviter.live.name} invites you to receive donations through Together",
        message="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[introduction.invitee_email],
    )


@transaction.atomic
def introduction_create(*, organisation: Organisation, actor: Actor, invitee_email: str, invitee_org_name_hint: str | None = None,
                        invitee_message: str | None = None, label: str | None = None) -> CreatedIntroduction:
    """Invite an organisation not yet on Together. The email goes out once the
    transaction commits (a rolled-back introduction sends nothing)."""
    email = (invitee_email or "").strip()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("invitee_email is not a valid email address.", param="invitee_email") from None
    token = secrets.token_urlsafe(32)
    introduction = Introduction.objects.create(
        organisation=organisation, invitee_email=email, invitee_org_name_hint=(invitee_org_name_hint or "").strip(),
        invitee_message=(invitee_message or "").strip(), label=(label or "").strip(), token_hash=token_hash(token),
        expires_at=timezone.now() + INTRODUCTION_TTL,
    )
    _intro_audit(introduction, actor, "introduction.created")
    introduction_id = introduction.id

    def send() -> None:
        try:
            _send_invite_email(introduction_id=introduction_id, token=token)
        except Exception:  # noqa: BLE001 - the introduction exists; log the mail failure loudly
            log.exception("could not send the invite email of introduction %s", introduction_id)

    transaction.on_commit(send)
    return CreatedIntroduction(introduction=introduction, token=token)


def introduction_get_by_token(*, token: str) -> Introduction | None:
    if not token or len(token) > 200:
        return None
    return Introduction.objects.select_related("organisation", "accepted_organisation").filter(token_hash=token_hash(token)).first()


def _intro_for_update(introduction_id: str) -> Introduction:
    return Introduction.objects.select_for_update().select_related("organisation").get(pk=introduction_id)


def _system_actor(label: str, request_id: str = "") -> Actor:
    return Actor(type="SYSTEM", label=label, request_id=request_id)


def _expire(introduction: Introduction, *, now: dt.datetime, request_id: str = "") -> None:
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.EXPIRED
    introduction.expired_at = now
    introduction.save(update_fields=["status", "expired_at", "updated_at"])
    _intro_audit(introduction, _system_actor("introduction expiry", request_id), "introduction.expired", before)


@transaction.atomic
def introduction_expire_if_due(*, introduction_id: str, request_id: str = "") -> bool:
    """Expire this introduction now if its TTL ran out while still open."""
    introduction = _intro_for_update(introduction_id)
    now = timezone.now()
    if introduction.status in OPEN_INTRODUCTION_STATES and introduction.expires_at <= now:
        _expire(introduction, now=now, request_id=request_id)
        return True
    return False


def introduction_expire_due(*, batch_size: int = 500) -> int:
    """The hourly sweep: expire every open introduction past its TTL, in batches
    (each in its own transaction, rows claimed with SKIP LOCKED)."""
    expired = 0
    while True:
        with transaction.atomic():
            now = timezone.now()
            batch = list(
                Introduction.objects.select_for_update(skip_locked=True).select_related("organisation")
                .filter(status__in=OPEN_INTRODUCTION_STATES, expires_at__lte=now)
                .order_by("expires_at")[:batch_size]
            )
            for introduction in batch:
                _expire(introduction, now=now)
        expired += len(batch)
        if len(batch) < batch_size:
            return expired


def _check_open(introduction: Introduction, *, allowed: tuple[str, ...]) -> None:
    if introduction.status in OPEN_INTRODUCTION_STATES and introduction.expires_at <= timezone.now():
        raise ValidationFailed("This introduction has expired.", param="introduction", reason="introduction_expired")
    if introduction.status not in allowed:
        raise ValidationFailed(f"This introduction is {introduction.status}.", param="introduction",
                               reason=f"introduction_{introduction.status}")


@transaction.atomic
def introduction_view(*, introduction_id: str, request_id: str = "") -> Introduction:
    """The invitee opened the invite page: pending → viewed (once)."""
    introduction = _intro_for_update(introduction_id)
    if introduction.status != IntroductionStatus.PENDING or introduction.expires_at <= timezone.now():
        return introduction
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.VIEWED
    introduction.viewed_at = timezone.now()
    introduction.save(update_fields=["status", "viewed_at", "updated_at"])
    _intro_audit(introduction, _system_actor("invitee", request_id), "introduction.viewed", before)
    return introduction


def introduction_eligible_organisations(*, introduction: Introduction, user) -> list[Organisation]:
    """The invitee's organisations that may accept: those where the user is ADMIN,
    in the inviter's mode (a sandbox introduction binds a sandbox), not the inviter."""
    from organisations.models import Membership

    live_orgs = [
        m.organisation
        for m in Membership.objects.filter(user=user, role=Role.ADMIN).select_related("organisation").order_by("organisation__name")
    ]
    inviter = introduction.organisation
    out = []
    for live in live_orgs:
        candidate = Organisation.objects.filter(live_organisation=live).first() if inviter.is_sandbox else live
        if candidate is not None and candidate.id != inviter.id and candidate.live.id != inviter.live.id:
            out.append(candidate)
    return out


@transaction.atomic
def introduction_accept(*, introduction_id: str, user, recipient_organisation: Organisation, request_id: str = "") -> Introduction:
    """The invitee, signed in, binds the introduction to one of its organisations."""
    introduction = _intro_for_update(introduction_id)
    _check_open(introduction, allowed=(IntroductionStatus.PENDING, IntroductionStatus.VIEWED))
    inviter = introduction.organisation
    if role_for(user=user, organisation=recipient_organisation) != Role.ADMIN:
        raise ValidationFailed("Only an ADMIN of the organisation can accept an introduction for it.", param="organisation")
    if recipient_organisation.is_sandbox != inviter.is_sandbox:
        raise ValidationFailed("A sandbox introduction binds a sandbox organisation, and a live one a live organisation.",
                               param="organisation")
    if recipient_organisation.live.id == inviter.live.id:
        raise ValidationFailed("An organisation cannot accept its own introduction.", param="organisation", reason="self_link")
    existing = RecipientOrgAccountLink.objects.for_organisation(inviter).filter(recipient_organisation=recipient_organisation).first()
    if existing is not None:
        raise ValidationFailed(f"{inviter.live.name} is already linked to {recipient_organisation.name}.", param="organisation",
                               reason="already_linked")
    actor = _system_actor(f"Invitee {user.get_username()} for {recipient_organisation.name}", request_id)
    if introduction.status == IntroductionStatus.PENDING:
        # The page was opened in this step: record the view first.
        before = introduction_snapshot(introduction_id=introduction.id)
        introduction.status, introduction.viewed_at = IntroductionStatus.VIEWED, timezone.now()
        introduction.save(update_fields=["status", "viewed_at", "updated_at"])
        _intro_audit(introduction, actor, "introduction.viewed", before)
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.ACCEPTED
    introduction.accepted_at = timezone.now()
    introduction.accepted_organisation = recipient_organisation
    introduction.accepted_by = user
    introduction.save(update_fields=["status", "accepted_at", "accepted_organisation", "accepted_by", "updated_at"])
    _intro_audit(introduction, actor, "introduction.accepted", before)
    return introduction


@transaction.atomic
def introduction_link(*, introduction_id: str, user, request_id: str = "") -> RecipientOrgAccountLink:
    """The invitee confirms the account that receives the funds: the link is made,
    owned by the inviter and carrying the introduction's id. Until Stripe Connect
    onboarding exists, the account is the recipient organisation's Together account."""
    introduction = _intro_for_update(introduction_id)
    _check_open(introduction, allowed=(IntroductionStatus.ACCEPTED,))
    recipient = introduction.accepted_organisation
    if recipient is None or role_for(user=user, organisation=recipient) != Role.ADMIN:
        raise ValidationFailed("Only an ADMIN of the accepting organisation can complete the link.", param="organisation")
    actor = _system_actor(f"Invitee {user.get_username()} for {recipient.name}", request_id)
    inviter = introduction.organisation
    try:
        link = _link_create(organisation=inviter, recipient=recipient, actor=actor,
                            label=introduction.label or recipient.live.name, via="introduction", introduction=introduction)
    except Conflict:
        raise ValidationFailed(f"{inviter.live.name} is already linked to {recipient.name}.", param="organisation",
                               reason="already_linked") from None
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.LINKED
    introduction.linked_at = timezone.now()
    introduction.save(update_fields=["status", "linked_at", "updated_at"])
    _intro_audit(introduction, actor, "introduction.linked", before)
    return link


@transaction.atomic
def introduction_revoke(*, organisation: Organisation, actor: Actor, introduction_id: str) -> Introduction:
    """The inviter cancels an introduction that is not yet linked, expired or revoked."""
    introduction = Introduction.objects.for_organisation(organisation).select_for_update().filter(pk=introduction_id).first()
    if introduction is None:
        raise NotFound("Introduction not found.")
    if introduction.status not in OPEN_INTRODUCTION_STATES:
        raise Conflict(f"Introduction {introduction.id} is already {introduction.status}; only pending, viewed or accepted "
                       "introductions can be revoked.", status=introduction.status)
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.REVOKED
    introduction.revoked_at = timezone.now()
    introduction.save(update_fields=["status", "revoked_at", "updated_at"])
    _intro_audit(introduction, actor, "introduction.revoked", before)
    return introduction


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
    audit_record(organisation=organisation, actor=actor, action="recommendation_set.created", object_type="recommendation_set",
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
    audit_record(organisation=organisation, actor=actor, action="recommendation_set.updated", object_type="recommendation_set",
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
    audit_record(organisation=organisation, actor=actor, action="recommendation_set.deleted", object_type="recommendation_set",
                 object_id=recommendation_set.id, before=before,
                 after=set_snapshot(organisation=organisation, set_id=recommendation_set.id))
    return recommendation_set


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
    return ValidationFailed(f"{recipient.name}: {exc.message}", param=param, **extra)


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


@transaction.atomic
def recommendation_split_pledge(*, recommendation_set_id: str, donor: dict, amounts: list[int] | None,
                                request_id: str = "") -> SplitGift:
    """The public giving form: validate, then store a PLEDGED gift in the
    recommending organisation. No payment is taken (card payment is a later
    issue) and nothing is written to the recipients' books."""
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

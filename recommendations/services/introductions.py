"""Introductions: pending → viewed → accepted → linked, or expired / revoked."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from organisations.models import Organisation, Role
from organisations.selectors import role_for
from recommendations.models import OPEN_INTRODUCTION_STATES, Introduction, IntroductionStatus, RecipientOrgAccountLink
from recommendations.selectors import introduction_snapshot
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.events import event_record
from recommendations.services._common import _system_actor, log
from recommendations.services.links import _link_create


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
    event_record(organisation=introduction.organisation, actor=actor, type=action, object_type="introduction",
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
    if introduction.is_past_expiry:
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
    introduction.guard("accept")
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
    introduction.guard("link")
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
    introduction.guard("revoke")
    before = introduction_snapshot(introduction_id=introduction.id)
    introduction.status = IntroductionStatus.REVOKED
    introduction.revoked_at = timezone.now()
    introduction.save(update_fields=["status", "revoked_at", "updated_at"])
    _intro_audit(introduction, actor, "introduction.revoked", before)
    return introduction



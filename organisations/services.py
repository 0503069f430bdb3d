"""Every state change of organisations, memberships, API keys and the audit trail."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from organisations.models import ApiKey, AuditEntry, Membership, Organisation, Role, Scope
from together.actors import Actor
from together.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from together.ratelimit import LimiterUnavailable, key_prefix, window_refund, window_reserve
from together.redis import client as redis_client

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_RANDOM_LENGTH = 40
KEY_PREFIX_LENGTH = 12
TOUCH_INTERVAL_SECONDS = 60

log = logging.getLogger("together.organisations")


def audit_entry(*, organisation: Organisation, actor: Actor, action: str, object_type: str, object_id: str,
                before: dict | None = None, after: dict | None = None, now=None) -> AuditEntry:
    """The audit entry `audit_record` writes, built and not yet saved (for a caller
    that inserts it with other rows in one statement: webhooks.events)."""
    now = now or timezone.now()
    return AuditEntry(
        organisation=organisation,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        request_id=actor.request_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        created_at=now,
        updated_at=now,
    )


def audit_record(*, organisation: Organisation, actor: Actor, action: str, object_type: str, object_id: str,
                 before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Record who changed what. By convention `action` is the dotted event type
    (`donation.voided`) and `after` is the object as the API renders it. A public
    change (an event type of `webhooks.events`) is recorded with
    `webhooks.events.event_record`, which writes the same entry with its event."""
    entry = audit_entry(organisation=organisation, actor=actor, action=action, object_type=object_type,
                        object_id=object_id, before=before, after=after)
    entry.save(force_insert=True)
    return entry


@transaction.atomic
def organisation_create(*, name: str, slug: str, owner_email: str | None = None,
                        owner_password: str | None = None) -> Organisation:
    """Onboard a live organisation together with its `{slug}-sandbox` twin."""
    if Organisation.objects.filter(slug__in=[slug, f"{slug}-sandbox"]).exists():
        raise Conflict(f"An organisation with slug '{slug}' already exists.", param="slug")
    if slug.endswith("-sandbox"):
        raise ValidationFailed("A live organisation's slug may not end in '-sandbox'.", param="slug")
    live = Organisation(name=name, slug=slug)
    live.full_clean()
    live.save()
    Organisation.objects.create(name=f"{name} (sandbox)", slug=f"{slug}-sandbox", is_sandbox=True, live_organisation=live)
    if owner_email:
        if owner_password and get_user_model().objects.filter(email__iexact=owner_email.strip()).exists():
            # A sign-up's password is for a new account only: never set it on an account that exists.
            raise Conflict("An account with this email already exists: sign in instead.", param="email")
        user = user_get_or_create(email=owner_email, password=owner_password)
        membership_set(organisation=live, user=user, role=Role.ADMIN)
    return live


def user_get_or_create(*, email: str, password: str | None = None, full_name: str = ""):
    """For operators' tools (demo loader, tests): sets `password` even on an
    existing account. Never call it with a password that came from a web form."""
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        first, _, last = full_name.partition(" ")
        user = User.objects.create_user(username=email, email=email, password=password, first_name=first, last_name=last)
    elif password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    return user


def membership_set(*, organisation: Organisation, user, role: str) -> Membership:
    """Give `user` `role` on a live organisation (and so on its sandbox)."""
    if organisation.is_sandbox:
        organisation = organisation.live_organisation
    membership, _ = Membership.objects.update_or_create(user=user, organisation=organisation, defaults={"role": role})
    return membership


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    plaintext: str


@transaction.atomic
def api_key_create(*, organisation: Organisation, actor: Actor, name: str, scope: str,
                   plaintext: str | None = None) -> CreatedApiKey:
    """Create a key; its plaintext exists only in the return value. `plaintext`
    is for the demo loader, which derives stable demo keys from SECRET_KEY."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A key needs a name.", param="name")
    if scope not in Scope.values:
        raise ValidationFailed("scope must be READ or WRITE.", param="scope")
    if plaintext is None:
        plaintext = "pc_" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_LENGTH))
    elif not plaintext.startswith("pc_") or len(plaintext) < 3 + 32:
        raise ValidationFailed("A key is pc_ and at least 32 random characters.", param="plaintext")
    key = ApiKey.objects.create(
        organisation=organisation,
        name=name[:100],
        scope=scope,
        prefix=plaintext[3 : 3 + KEY_PREFIX_LENGTH],
        hashed_key=ApiKey.hash_plaintext(plaintext),
        created_by=actor.user,
    )
    audit_record(organisation=organisation, actor=actor, action="api_key.created", object_type="api_key",
                 object_id=key.id, after={"name": key.name, "scope": key.scope, "prefix": key.prefix})
    return CreatedApiKey(api_key=key, plaintext=plaintext)


@transaction.atomic
def api_key_revoke(*, organisation: Organisation, actor: Actor, api_key_id: str) -> ApiKey:
    key = ApiKey.objects.for_organisation(organisation).select_for_update().get(id=api_key_id)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(organisation=organisation, actor=actor, action="api_key.revoked", object_type="api_key",
                     object_id=key.id, after={"revoked_at": key.revoked_at.isoformat()})
    return key


def api_key_touch_marker(api_key_id: str) -> str:
    """The Redis key whose presence means "use already recorded this interval" (the
    cache's own key for `apikey-touch:<id>`, so `cache.delete` clears it)."""
    return cache.make_and_validate_key(f"apikey-touch:{api_key_id}")


def api_key_touch(*, api_key: ApiKey, marker_set: bool | None = None) -> None:
    """Record use at most once a minute per key: a Redis marker (SET NX with a
    lifetime) gates the UPDATE. `marker_set`: the caller already set it in its own
    round trip (organisations.api.authentication) and says whether it was new."""
    if marker_set is None:
        try:
            marker_set = bool(redis_client().set(api_key_touch_marker(api_key.id), 1, nx=True, ex=TOUCH_INTERVAL_SECONDS))
        except Exception:  # Redis down: skip the bookkeeping, never the request
            return
    if marker_set:
        ApiKey.objects.filter(id=api_key.id).update(last_used_at=timezone.now())


# --- the sign-in throttle ----------------------------------------------------------
#
# FAILED_LOGIN_LIMIT failed sign-ins per (email, client address) per fixed window
# that starts at the first counted attempt. Every sign-in first reserves an
# attempt atomically in Redis (INCR, EXPIRE when new, and give it straight back
# when over the limit), and only then is the password checked; a sign-in whose
# password was right gives its attempt back. So concurrent guesses can never get
# more than FAILED_LOGIN_LIMIT wrong passwords evaluated in one window, and once
# the limit is reached even the right password waits for the window to pass.
# With Redis down the throttle fails open (logged): staff can still sign in.

FAILED_LOGIN_LIMIT = 5
FAILED_LOGIN_WINDOW = 15 * 60

@dataclass(frozen=True)
class SignInReservation:
    allowed: bool
    retry_after: int | None = None


def signin_attempts_key(*, email: str, client_ip: str) -> str:
    digest = hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]
    return f"{key_prefix()}:signin-attempts:{digest}:{client_ip or 'unknown'}"


def signin_attempt_reserve(*, email: str, client_ip: str) -> SignInReservation:
    """Reserve one sign-in attempt before the password is checked (together.ratelimit's window)."""
    try:
        result = window_reserve(key=signin_attempts_key(email=email, client_ip=client_ip),
                                limit=FAILED_LOGIN_LIMIT, window_seconds=FAILED_LOGIN_WINDOW)
    except LimiterUnavailable as exc:  # Redis down: no throttle, never a 500
        log.error("SIGN-IN THROTTLE UNAVAILABLE, failing open: %s", exc)
        return SignInReservation(allowed=True)
    return SignInReservation(allowed=result.allowed, retry_after=result.retry_after)


def signin_attempt_refund(*, email: str, client_ip: str) -> None:
    """Give back the attempt of a sign-in whose password was right."""
    window_refund(key=signin_attempts_key(email=email, client_ip=client_ip))


# --- team -------------------------------------------------------------------------

INVITATION_DAYS = 7


def _live(organisation: Organisation) -> Organisation:
    return organisation.live_organisation if organisation.is_sandbox else organisation


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_token_issue(invitation) -> str:
    """A fresh token for `invitation`; only its SHA-256 is stored. The plaintext
    leaves this module in the invitee's email and nowhere else."""
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _token_hash(token)
    return token


def _invitation_email_on_commit(*, invitation, token: str, inviter_label: str) -> None:
    """Email the join link to the invitee once the transaction commits."""
    from django.conf import settings as dj_settings
    from django.core.mail import send_mail

    organisation = invitation.organisation
    join_url = f"{dj_settings.SITE_URL}/join/{token}"
    subject = f"Join {organisation.name} on Together"
    body = (
        f"Hello {invitation.full_name},\n\n{inviter_label} invited you to {organisation.name} on Together as "
        f"{invitation.role}.\nOpen this link to accept (valid {INVITATION_DAYS} days). If you already have a "
        f"Together account, sign in with it there; otherwise choose your password:\n\n{join_url}\n\n"
        f"Only this email holds the link; if it reached you by mistake, ignore it.\n"
    )
    recipient = invitation.email
    transaction.on_commit(lambda: send_mail(subject, body, None, [recipient]))


@transaction.atomic
def invitation_create(*, organisation: Organisation, actor: Actor, email: str, full_name: str, role: str = Role.EDITOR):
    """Invite someone by email and email them the join link. Returns the
    invitation; the token is never returned, shown or stored in plaintext."""
    from datetime import timedelta

    from organisations.models import Invitation

    organisation = _live(organisation)
    email = (email or "").strip().lower()
    if "@" not in email:
        raise ValidationFailed("Enter a valid email.", param="email")
    if not (full_name or "").strip():
        raise ValidationFailed("Full name is required.", param="full_name")
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", param="role")
    if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member.", param="email")
    Invitation.objects.filter(organisation=organisation, email__iexact=email, accepted_at__isnull=True,
                              revoked_at__isnull=True).update(revoked_at=timezone.now())
    invitation = Invitation(
        organisation=organisation, email=email, full_name=full_name.strip(), role=role,
        invited_by=actor.user, expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    token = _invitation_token_issue(invitation)
    invitation.save()
    audit_record(organisation=organisation, actor=actor, action="invitation.created", object_type="invitation",
                 object_id=invitation.id, after={"email": email, "role": role})
    _invitation_email_on_commit(invitation=invitation, token=token, inviter_label=actor.label)
    return invitation


@transaction.atomic
def invitation_resend(*, organisation: Organisation, actor: Actor, invitation_id: str):
    """Email an open (or expired) invitation again with a fresh token and a
    fresh expiry; the previous link stops working."""
    from datetime import timedelta

    from organisations.models import Invitation

    invitation = (Invitation.objects.select_for_update().select_related("organisation")
                  .filter(organisation=_live(organisation), pk=invitation_id).first())
    if invitation is None:
        raise NotFound("Invitation not found.")
    if invitation.accepted_at or invitation.revoked_at:
        raise ValidationFailed("Only an open invitation can be resent; invite the person again instead.", param="invitation")
    token = _invitation_token_issue(invitation)
    invitation.expires_at = timezone.now() + timedelta(days=INVITATION_DAYS)
    invitation.save(update_fields=["token_hash", "expires_at"])
    audit_record(organisation=invitation.organisation, actor=actor, action="invitation.resent", object_type="invitation",
                 object_id=invitation.id, after={"email": invitation.email, "role": invitation.role})
    _invitation_email_on_commit(invitation=invitation, token=token, inviter_label=actor.label)
    return invitation


def invitation_for_token(*, token: str):
    from organisations.models import Invitation

    invitation = Invitation.objects.select_related("organisation").filter(token_hash=_token_hash(token)).first()
    if invitation is None or invitation.state != "INVITED":
        return None
    return invitation


def invitation_account(*, invitation):
    """The existing account the invitation's email belongs to, or None."""
    from django.db.models import Q

    User = get_user_model()
    email = invitation.email.strip().lower()
    return User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).order_by("pk").first()


def _invitation_lock(*, token: str):
    from organisations.models import Invitation

    invitation = invitation_for_token(token=token)
    if invitation is not None:
        invitation = Invitation.objects.select_for_update().select_related("organisation").get(pk=invitation.pk)
    if invitation is None or invitation.state != "INVITED":
        raise ValidationFailed("This invitation is no longer valid.", param="token")
    return invitation


def _invitation_complete(*, invitation, user) -> None:
    membership_set(organisation=invitation.organisation, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(organisation=invitation.organisation, actor=Actor.for_user(user), action="invitation.accepted",
                 object_type="invitation", object_id=invitation.id, after={"email": invitation.email, "role": invitation.role})


@transaction.atomic
def invitation_accept(*, token: str, user):
    """An existing, signed-in account joins the organisation. The account must
    be the one the invitation was sent to; nothing about it changes but the
    new membership (its password is never touched)."""
    invitation = _invitation_lock(token=token)
    if user is None or not user.is_authenticated or not user.is_active:
        raise Forbidden("Sign in to accept this invitation.", param="token")
    own = {(user.email or "").strip().lower(), (user.get_username() or "").strip().lower()}
    if invitation.email.strip().lower() not in own:
        raise Forbidden("This invitation was sent to another email address. Sign in as that account to accept it.",
                        param="token")
    _invitation_complete(invitation=invitation, user=user)
    return user


@transaction.atomic
def invitation_accept_new_account(*, token: str, password: str):
    """Create the invitee's account with its first password and join. Refused
    when an account with the invitation's email already exists: that account
    must sign in as itself and use `invitation_accept`."""
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    invitation = _invitation_lock(token=token)
    if invitation_account(invitation=invitation) is not None:
        raise Forbidden("An account with this email already exists. Sign in with it to accept the invitation.",
                        param="token")
    try:
        validate_password(password)
    except ValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), param="password") from None
    User = get_user_model()
    first, _, last = invitation.full_name.partition(" ")
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=invitation.email, email=invitation.email, password=password,
                                            first_name=first, last_name=last)
    except IntegrityError:  # created concurrently: never fall back to changing it
        raise Forbidden("An account with this email already exists. Sign in with it to accept the invitation.",
                        param="token") from None
    _invitation_complete(invitation=invitation, user=user)
    return user


@transaction.atomic
def invitation_revoke(*, organisation: Organisation, actor: Actor, invitation_id: str) -> None:
    from organisations.models import Invitation

    invitation = Invitation.objects.select_for_update().filter(organisation=_live(organisation), pk=invitation_id).first()
    if invitation is None:
        raise NotFound("Invitation not found.")
    if invitation.accepted_at:
        raise ValidationFailed("An accepted invitation cannot be revoked; remove the member instead.", param="invitation")
    invitation.revoked_at = invitation.revoked_at or timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(organisation=invitation.organisation, actor=actor, action="invitation.revoked", object_type="invitation",
                 object_id=invitation.id)


def _admins_left(organisation: Organisation, excluding_user_id) -> int:
    return Membership.objects.filter(organisation=organisation, role=Role.ADMIN).exclude(user_id=excluding_user_id).count()


@transaction.atomic
def membership_change_role(*, organisation: Organisation, actor: Actor, user_id: int, role: str) -> Membership:
    organisation = _live(organisation)
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", param="role")
    membership = Membership.objects.select_for_update().filter(organisation=organisation, user_id=user_id).first()
    if membership is None:
        raise NotFound("Member not found.")
    if membership.role == Role.ADMIN and role != Role.ADMIN and _admins_left(organisation, user_id) == 0:
        raise ValidationFailed("The last ADMIN cannot be demoted.", param="role")
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(organisation=organisation, actor=actor, action="membership.updated", object_type="membership",
                 object_id=str(membership.pk), before=before, after={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, organisation: Organisation, actor: Actor, user_id: int) -> None:
    """Remove a member from the organisation (and so its sandbox) and end their sessions."""
    from django.contrib.sessions.models import Session

    organisation = _live(organisation)
    membership = Membership.objects.select_for_update().filter(organisation=organisation, user_id=user_id).first()
    if membership is None:
        raise NotFound("Member not found.")
    if membership.role == Role.ADMIN and _admins_left(organisation, user_id) == 0:
        raise ValidationFailed("The last ADMIN cannot be removed.", param="user")
    membership.delete()
    for session in Session.objects.filter(expire_date__gt=timezone.now()):
        if str(session.get_decoded().get("_auth_user_id")) == str(user_id):
            session.delete()
    audit_record(organisation=organisation, actor=actor, action="membership.removed", object_type="membership",
                 object_id=str(user_id))


# --- Stripe account (Settings → Payments) -------------------------------------------

STRIPE_ACCOUNT_RE = re.compile(r"^acct_[A-Za-z0-9]{6,}$")


def _stripe_snapshot(organisation: Organisation) -> dict:
    return {
        "stripe_account_id": organisation.stripe_account_id,
        "stripe_connected": organisation.stripe_connected,
        "stripe_connected_at": organisation.stripe_connected_at.isoformat() if organisation.stripe_connected_at else None,
    }


@transaction.atomic
def organisation_stripe_connect(*, organisation: Organisation, actor: Actor, account_id: str) -> Organisation:
    """Connect `organisation` to its Stripe account (`acct_…`): from now on its
    forms and links may take card payments into that account."""
    account_id = (account_id or "").strip()
    if not STRIPE_ACCOUNT_RE.fullmatch(account_id) or len(account_id) > 255:
        raise ValidationFailed("A Stripe account id is acct_ followed by at least 6 letters or digits.", param="account_id")
    org = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if org.stripe_account_id == account_id and org.stripe_connected:
        return org
    before = _stripe_snapshot(org)
    org.stripe_account_id = account_id
    org.stripe_connected_at = timezone.now()
    org.save(update_fields=["stripe_account_id", "stripe_connected_at", "updated_at"])
    audit_record(organisation=org, actor=actor, action="organisation.stripe_connected", object_type="organisation",
                 object_id=org.id, before=before, after=_stripe_snapshot(org))
    organisation.stripe_account_id, organisation.stripe_connected_at = org.stripe_account_id, org.stripe_connected_at
    return org


@transaction.atomic
def organisation_stripe_disconnect(*, organisation: Organisation, actor: Actor) -> Organisation:
    """Forget the Stripe account: forms and links stop taking payments at once
    (gifts already paid stay as they are; their refunds still go through Stripe)."""
    org = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if not org.stripe_account_id and org.stripe_connected_at is None:
        return org
    before = _stripe_snapshot(org)
    org.stripe_account_id = None
    org.stripe_connected_at = None
    org.save(update_fields=["stripe_account_id", "stripe_connected_at", "updated_at"])
    audit_record(organisation=org, actor=actor, action="organisation.stripe_disconnected", object_type="organisation",
                 object_id=org.id, before=before, after=_stripe_snapshot(org))
    organisation.stripe_account_id, organisation.stripe_connected_at = None, None
    return org

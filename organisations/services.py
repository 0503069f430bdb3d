"""Every state change of organisations, memberships, API keys and the audit trail."""
from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from organisations.models import ApiKey, AuditEntry, Membership, Organisation, Role, Scope
from together.actors import Actor
from together.exceptions import Conflict, ValidationFailed

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_RANDOM_LENGTH = 40
KEY_PREFIX_LENGTH = 12
TOUCH_INTERVAL_SECONDS = 60


# Called with every audit entry, inside the caller's transaction. The webhooks
# app registers `event_record` here: an audit action that is a public event type
# (`donor.created`, …) becomes an Event in the same transaction as the change.
AUDIT_LISTENERS: list = []


def audit_record(*, organisation: Organisation, actor: Actor, action: str, object_type: str, object_id: str,
                 before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Record who changed what. By convention `action` is the dotted event type
    (`donation.voided`) and `after` is the object as the API renders it."""
    entry = AuditEntry.objects.create(
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
    )
    for listener in AUDIT_LISTENERS:
        listener(entry)
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
        user = user_get_or_create(email=owner_email, password=owner_password)
        membership_set(organisation=live, user=user, role=Role.ADMIN)
    return live


def user_get_or_create(*, email: str, password: str | None = None, full_name: str = ""):
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


def _hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    plaintext: str


@transaction.atomic
def api_key_create(*, organisation: Organisation, actor: Actor, name: str, scope: str) -> CreatedApiKey:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("A key needs a name.", param="name")
    if scope not in Scope.values:
        raise ValidationFailed("scope must be READ or WRITE.", param="scope")
    plaintext = "pc_" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_LENGTH))
    key = ApiKey.objects.create(
        organisation=organisation,
        name=name[:100],
        scope=scope,
        prefix=plaintext[3 : 3 + KEY_PREFIX_LENGTH],
        hashed_key=_hash_key(plaintext),
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


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use at most once a minute per key: a Redis marker gates the UPDATE."""
    try:
        first_this_minute = cache.add(f"apikey-touch:{api_key.id}", 1, TOUCH_INTERVAL_SECONDS)
    except Exception:  # Redis down: skip the bookkeeping, never the request
        return
    if first_this_minute:
        ApiKey.objects.filter(id=api_key.id).update(last_used_at=timezone.now())

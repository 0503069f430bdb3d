"""The demo's first steps (see together/demo.py): the organisation, its users and its API keys."""
from __future__ import annotations

import hashlib
import hmac
import sys

from django.conf import settings

from organisations.models import ApiKey, Organisation, Role, Scope
from organisations.services import (
    KEY_ALPHABET,
    KEY_RANDOM_LENGTH,
    api_key_create,
    membership_set,
    organisation_create,
    user_get_or_create,
)
from together.actors import Actor
from together.demo import DemoContext, demo_step

DEMO_ORG_NAME = "Riverbank Action"
DEMO_ORG_SLUG = "riverbank"

# (email, password, role): printed as `Demo login: <email> / <password> (<ROLE>)`.
DEMO_USERS: list[tuple[str, str, str]] = [
    ("admin@demo.together.test", "riverbank-admin-demo", Role.ADMIN),
    ("editor@demo.together.test", "riverbank-editor-demo", Role.EDITOR),
    ("viewer@demo.together.test", "riverbank-viewer-demo", Role.VIEWER),
]

# (scope, key name): printed as `Demo API key (<SCOPE>): pc_…`.
DEMO_KEYS: list[tuple[str, str]] = [
    (Scope.READ, "Demo read key"),
    (Scope.WRITE, "Demo write key"),
]


# --- deterministic demo keys -------------------------------------------------

def demo_key_plaintext(label: str, *, secret: str | None = None) -> str:
    """`pc_` + 40 base62 characters from HMAC-SHA512(SECRET_KEY, label).

    Same SECRET_KEY and label, same key; the key cannot be derived without
    SECRET_KEY. Matches the shape of `api_key_create`'s random keys.
    """
    secret = settings.SECRET_KEY if secret is None else secret
    digest = hmac.new(secret.encode(), f"together-demo-key:{label}".encode(), hashlib.sha512).digest()
    number = int.from_bytes(digest, "big")  # 512 bits, more than 40 base62 digits (~238 bits) need
    chars = []
    for _ in range(KEY_RANDOM_LENGTH):
        number, index = divmod(number, len(KEY_ALPHABET))
        chars.append(KEY_ALPHABET[index])
    return "pc_" + "".join(chars)


def ensure_api_key(*, organisation: Organisation, actor: Actor, name: str, scope: str, plaintext: str) -> ApiKey:
    """The key with this plaintext, created through api_key_create if no key has its hash."""
    existing = ApiKey.objects.filter(hashed_key=ApiKey.hash_plaintext(plaintext)).first()
    if existing is not None:
        return existing
    return api_key_create(organisation=organisation, actor=actor, name=name, scope=scope, plaintext=plaintext).api_key


# --- the core steps -------------------------------------------------------------

@demo_step(order=10, name="together.organisation")
def demo_organisation(ctx: DemoContext) -> None:
    live = Organisation.objects.filter(slug=DEMO_ORG_SLUG, is_sandbox=False).first()
    if live is None:
        live = organisation_create(name=DEMO_ORG_NAME, slug=DEMO_ORG_SLUG)
    ctx.organisation = live
    ctx.sandbox = Organisation.objects.filter(live_organisation=live, is_sandbox=True).first()


@demo_step(order=20, name="together.users")
def demo_users(ctx: DemoContext) -> None:
    for email, password, role in DEMO_USERS:
        user = user_get_or_create(email=email, password=password, full_name=f"Demo {role.label}")
        membership_set(organisation=ctx.organisation, user=user, role=role)
        if role == Role.ADMIN and not user.is_staff:
            # The demo ADMIN also opens the back office (/admin), scoped to its organisations.
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        ctx.users[role.value] = user
        ctx.report(f"Demo login: {email} / {password} ({role.value})")


@demo_step(order=30, name="together.api_keys")
def demo_api_keys(ctx: DemoContext) -> None:
    for scope, name in DEMO_KEYS:
        plaintext = demo_key_plaintext(f"{ctx.organisation.slug}:{scope.value}")
        key = ensure_api_key(organisation=ctx.organisation, actor=ctx.actor, name=name, scope=scope,
                             plaintext=plaintext)
        if key.revoked_at is not None or key.scope != scope or key.organisation_id != ctx.organisation.id:
            print(f"warning: the demo {scope.value} key {key.prefix}… is revoked or changed; it will not work",
                  file=sys.stderr)
        ctx.keys[scope.value] = plaintext
        ctx.report(f"Demo API key ({scope.value}): {plaintext}")



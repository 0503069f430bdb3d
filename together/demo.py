"""Demo data for `make run` (`python manage.py load_demo`).

Loading is idempotent: every step finds what an earlier run made before it
creates anything, so running it twice changes nothing and prints the same
lines (the same passwords and the same API keys).

Steps run in `order`, in one transaction, and share a `DemoContext`. The core
steps here make the demo organisation "Riverbank Action" (slug `riverbank`,
with its sandbox twin), three users (ADMIN, EDITOR, VIEWER) and one READ and
one WRITE API key on the live organisation.

Extending it: another app adds a module `<app>/demo.py` that registers steps;
`load_demo` imports every installed app's `demo` module first (as the admin
does with `admin.py`), so nothing here needs editing::

    # donations/demo.py
    from together.demo import DemoContext, demo_step

    @demo_step(order=100)
    def donors(ctx: DemoContext) -> None:
        ...  # use ctx.organisation, ctx.sandbox, ctx.users["ADMIN"], ctx.actor
        ctx.report("Demo donors: 25")   # printed after the transaction commits

Use orders above 100 for data that needs the organisation, users and keys.

API keys: a key's plaintext is never stored, so to print the same demo keys on
every run their plaintext is derived from SECRET_KEY and a label
(`demo_key_plaintext`); the row is created only when no key with that hash
exists. Changing SECRET_KEY gives new demo keys.
"""
from __future__ import annotations

import hashlib
import hmac
import sys
from dataclasses import dataclass, field
from typing import Callable, TextIO

from django.conf import settings
from django.db import transaction

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


@dataclass
class DemoContext:
    """What the steps share. Steps fill it in as they go."""

    stdout: TextIO
    actor: Actor = field(default_factory=lambda: Actor.system("manage.py load_demo"))
    organisation: Organisation | None = None  # the live demo organisation
    sandbox: Organisation | None = None
    users: dict[str, object] = field(default_factory=dict)  # role -> user
    keys: dict[str, str] = field(default_factory=dict)  # scope -> plaintext
    lines: list[str] = field(default_factory=list)

    def report(self, line: str) -> None:
        """A line to print once everything has committed."""
        self.lines.append(line)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    run: Callable[[DemoContext], None]


# The registry: `demo_step` appends here; `load_demo` runs them by `order`.
DEMO_STEPS: list[DemoStep] = []


def demo_step(*, order: int, name: str | None = None):
    """Register a step `fn(ctx: DemoContext) -> None`. Re-registering a name replaces it."""

    def register(fn: Callable[[DemoContext], None]):
        step_name = name or f"{fn.__module__}.{fn.__qualname__}"
        DEMO_STEPS[:] = [s for s in DEMO_STEPS if s.name != step_name]
        DEMO_STEPS.append(DemoStep(order=order, name=step_name, run=fn))
        return fn

    return register


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


def _hash_key(plaintext: str) -> str:
    # As organisations.services._hash_key.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def ensure_api_key(*, organisation: Organisation, actor: Actor, name: str, scope: str, plaintext: str) -> ApiKey:
    """The key with this plaintext, created through api_key_create if no key has its hash."""
    existing = ApiKey.objects.filter(hashed_key=_hash_key(plaintext)).first()
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


# --- entry point -----------------------------------------------------------------

def discover_steps() -> None:
    """Import `<app>.demo` for every installed app, so their steps register."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("demo")


def load_demo(stdout: TextIO | None = None) -> DemoContext:
    """Run every registered step in order, in one transaction, then print the report."""
    discover_steps()
    ctx = DemoContext(stdout=stdout or sys.stdout)
    with transaction.atomic():
        for step in sorted(DEMO_STEPS, key=lambda s: (s.order, s.name)):
            step.run(ctx)
    for line in ctx.lines:
        ctx.stdout.write(line + "\n")
    return ctx

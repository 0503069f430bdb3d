"""Fixtures for recommendations: recipient organisations linked through the real
passphrase exchange, users with roles, and API clients with real keys."""
from __future__ import annotations

import itertools

import pytest

from organisations.models import AuditEntry, Role
from organisations.services import membership_set, user_get_or_create
from recommendations import services
from tests.conftest import client_for, make_key, make_org
from together.actors import Actor

SYSTEM = Actor.system("tests")
_users = itertools.count()


def make_user(organisation, role: str = Role.ADMIN, *, email: str | None = None, password: str = "correct-horse-battery"):
    email = email or f"user{next(_users)}-{organisation.slug}@example.org"
    user = user_get_or_create(email=email, password=password)
    membership_set(organisation=organisation, user=user, role=role)
    return user


def passphrase_for(organisation) -> str:
    return services.distribution_passphrase_generate(organisation=organisation, actor=SYSTEM).plaintext


def link(owner, recipient, label: str | None = None):
    """owner → recipient, through the real exchange."""
    return services.recipient_link_exchange(organisation=owner, actor=SYSTEM, passphrase=passphrase_for(recipient),
                                            label=label or f"{recipient.name} main")


def audit_actions(organisation, object_id: str | None = None) -> list[str]:
    qs = AuditEntry.objects.for_organisation(organisation).order_by("created_at", "id")
    if object_id:
        qs = qs.filter(object_id=object_id)
    return list(qs.values_list("action", flat=True))


@pytest.fixture
def recipients(db):
    """Three recipient organisations, each with a donor-facing name."""
    return [make_org(name) for name in ("Riverbank Action Fund", "Coastal Climate", "Forest Futures")]


@pytest.fixture
def links(org, recipients):
    return [link(org, r) for r in recipients]


@pytest.fixture
def other_write_key(other_org):
    return make_key(other_org, "WRITE")


@pytest.fixture
def sandbox_write_key(sandbox):
    return make_key(sandbox, "WRITE")


@pytest.fixture
def sandbox_client(sandbox_write_key):
    return client_for(sandbox_write_key)

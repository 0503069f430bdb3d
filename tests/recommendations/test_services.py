"""Recommendations rules that need no HTTP: the introduction and link lifecycle
tables (which the services enforce), and an invitee's organisation made with a
free slug from its name, also when the slug is taken or lost to a race."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.utils import timezone

from organisations.models import Membership, Organisation, Role
from organisations.services import organisation_create, user_get_or_create
from recommendations import services
from recommendations.models import DeactivatedBy, Introduction, IntroductionStatus, RecipientOrgAccountLink
from together.exceptions import Conflict, ValidationFailed

LATER, EARLIER = dt.timedelta(days=1), -dt.timedelta(days=1)
S = IntroductionStatus

# (status, expires in, can_accept, can_link, can_revoke)
INTRODUCTIONS = [
    (S.PENDING, LATER, True, False, True),
    (S.VIEWED, LATER, True, False, True),
    (S.ACCEPTED, LATER, False, True, True),
    (S.LINKED, LATER, False, False, False),
    (S.EXPIRED, EARLIER, False, False, False),
    (S.REVOKED, LATER, False, False, False),
    (S.PENDING, EARLIER, False, False, True),   # past its expiry: never accepted late, still revocable
    (S.ACCEPTED, EARLIER, False, False, True),
]


@pytest.mark.parametrize(("status", "expires_in", "can_accept", "can_link", "can_revoke"), INTRODUCTIONS)
def test_introduction_lifecycle_table(status, expires_in, can_accept, can_link, can_revoke):
    intro = Introduction(status=status, expires_at=timezone.now() + expires_in)
    assert (intro.can_accept, intro.can_link, intro.can_revoke) == (can_accept, can_link, can_revoke)
    if not can_accept:
        reason = intro.refusal_for("accept").extra["reason"]
        assert reason == ("introduction_expired" if intro.is_past_expiry else f"introduction_{status}")
    if not can_revoke:
        assert intro.refusal_for("revoke").error is Conflict


@pytest.mark.parametrize(("is_active", "deactivated_by", "owner_reactivate", "recipient_reactivate", "recipient_deactivate"), [
    (True, None, True, False, True),
    (False, DeactivatedBy.OWNER, True, False, True),
    (False, DeactivatedBy.RECIPIENT, False, True, False),
])
def test_link_lifecycle_table(is_active, deactivated_by, owner_reactivate, recipient_reactivate, recipient_deactivate):
    link = RecipientOrgAccountLink(is_active=is_active, deactivated_by=deactivated_by)
    assert link.can("owner_reactivate") is owner_reactivate
    assert link.can_recipient_reactivate is recipient_reactivate
    assert link.can_recipient_deactivate is recipient_deactivate
    if not owner_reactivate:
        refusal = link.refusal_for("owner_reactivate")
        assert refusal.param == "is_active" and refusal.extra == {"reason": "deactivated_by_recipient"}


@pytest.mark.django_db
def test_an_invitees_organisation_gets_a_free_slug_and_its_admin():
    user = user_get_or_create(email="invitee@example.org", password="x")
    first = services.invitee_organisation_create(user=user, name="River Trust")
    assert first.slug == "river-trust" and first.sandbox.slug == "river-trust-sandbox"
    assert Membership.objects.get(user=user, organisation=first).role == Role.ADMIN
    second = services.invitee_organisation_create(user=user, name="River Trust")
    assert second.slug.startswith("river-trust-") and second.slug != first.slug
    sandboxish = services.organisation_create_named(name="Green Sandbox")  # never ends in the twin's suffix
    assert sandboxish.slug == "green"
    with pytest.raises(ValidationFailed):
        services.invitee_organisation_create(user=user, name="   ")


@pytest.mark.django_db
def test_a_slug_lost_to_a_race_is_retried(monkeypatch):
    """Two sign-ups with one name: the insert that loses the unique slug tries the next suffix."""
    from recommendations.services import invitees

    calls = []

    def racing_create(**kwargs):
        calls.append(kwargs["slug"])
        if len(calls) == 1:
            organisation_create(name="Someone else", slug=kwargs["slug"])
            raise IntegrityError("duplicate key value violates unique constraint")
        return organisation_create(**kwargs)

    monkeypatch.setattr(invitees, "organisation_create", racing_create)
    made = invitees.organisation_create_named(name="Harbour Friends")
    assert calls[0] == "harbour-friends" and made.slug == calls[1] != calls[0]
    assert Organisation.objects.get(slug=made.slug).name == "Harbour Friends"


@pytest.mark.django_db
def test_invitee_signup_is_all_or_nothing():
    user = services.invitee_signup(full_name="Mary Jones", email="Mary@Example.org", password="a long Passphrase 77",
                                   organisation_name="Mary's Fund")
    assert (user.first_name, user.last_name, user.email) == ("Mary", "Jones", "mary@example.org")
    with pytest.raises(Conflict) as caught:
        services.invitee_signup(full_name="M", email="mary@example.org", password="a long Passphrase 77", organisation_name="X")
    assert caught.value.param == "email"
    with pytest.raises(ValidationFailed) as caught:
        services.invitee_signup(full_name="P", email="p@example.org", password="123", organisation_name="Short Pw")
    assert caught.value.param == "password"
    assert not get_user_model().objects.filter(email="p@example.org").exists()
    assert not Organisation.objects.filter(name="Short Pw").exists()

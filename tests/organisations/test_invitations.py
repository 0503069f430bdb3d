"""Invitations (security review, issue 13, defect 1): accepting an invitation
never changes an existing account. An existing user signs in as themselves and
then joins; only a brand-new account chooses its first password. The join link
reaches only the invitee's inbox: the Users page never shows it, and staff can
Resend (a fresh link that ends the old one), not read it."""
from __future__ import annotations

import re
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from organisations import services
from organisations.models import AuditEntry, Invitation, Membership, Role
from tests.conftest import make_org
from tests.dashboard.conftest import PASSWORD, client_as, make_user
from together.actors import Actor
from together.exceptions import Forbidden

pytestmark = pytest.mark.django_db

JOIN = re.compile(r"https?://[^/\s]+(/join/[\w-]+)")


def text(response) -> str:
    return response.content.decode()


def invite(admin_client, capture, email: str, role: str = "ADMIN", full_name: str = "Invited Person"):
    """Invite through Settings → Users; return (the page the ADMIN sees, the link from the email)."""
    before = len(mail.outbox)
    with capture(execute=True):
        response = admin_client.post(reverse("settings-users"), {"action": "invite", "full_name": full_name,
                                                                 "email": email, "role": role}, follow=True)
    assert response.status_code == 200
    assert len(mail.outbox) == before + 1
    message = mail.outbox[-1]
    assert message.to == [email.lower()]
    return response, JOIN.search(message.body).group(1)


def sign_in(email: str, password: str) -> tuple[Client, int]:
    client = Client()
    response = client.post(reverse("login"), {"username": email, "password": password})
    return client, response.status_code


@pytest.fixture
def org_a():
    return make_org("Alpha")


@pytest.fixture
def org_b():
    return make_org("Bravo")


@pytest.fixture
def admin_a(org_a):
    return make_user(org_a, Role.ADMIN, name="Attacker Admin")


@pytest.fixture
def admin_b(org_b):
    return make_user(org_b, Role.ADMIN, name="Victim Admin")


def assert_no_takeover(join: str, victim, org, attacker_client: Client) -> None:
    """Neither an anonymous visitor nor the inviting ADMIN can set the victim's password through the link."""
    anonymous = Client()
    page = anonymous.get(join)
    assert page.status_code == 200
    assert 'type="password"' not in text(page)
    assert "already has a Together account" in text(page) and "Sign in to accept" in text(page)
    for client in (anonymous, attacker_client):
        response = client.post(join, {"password": "attacker chosen passphrase"})
        assert response.status_code == 403
        assert "_auth_user_id" not in anonymous.session
    victim.refresh_from_db()
    assert victim.check_password(PASSWORD) and not victim.check_password("attacker chosen passphrase")
    assert not Membership.objects.filter(organisation=org, user=victim).exists()
    # The attacker's own session is still the attacker's, not the victim's.
    assert attacker_client.get(reverse("settings-users")).wsgi_request.user.email != victim.email
    _client, status = sign_in(victim.email, "attacker chosen passphrase")
    assert status == 200  # refused: the login page again
    _client, status = sign_in(victim.email, PASSWORD)
    assert status == 302  # the victim's own password still works


def test_admin_of_one_org_cannot_take_over_another_orgs_admin(org_a, org_b, admin_a, admin_b,
                                                              django_capture_on_commit_callbacks):
    attacker = client_as(admin_a)
    page, join = invite(attacker, django_capture_on_commit_callbacks, admin_b.email.upper(), role="ADMIN")
    token = join.rsplit("/", 1)[1]
    # The ADMIN who invited never sees the link, on the page after inviting or later.
    for html in (text(page), text(attacker.get(reverse("settings-users")))):
        assert token not in html and "/join/" not in html
        assert admin_b.email in html  # the invitation is listed, without its link
    assert token not in Invitation.objects.get(email=admin_b.email).token_hash  # only a hash is stored

    assert_no_takeover(join, admin_b, org_a, attacker)

    # The invitee follows the page's "Sign in to accept" link, signs in as themselves and comes back to join:
    # no password form, no password change.
    login_url = re.search(r'href="(/login/\?next=[^"]+)"', text(Client().get(join))).group(1)
    victim = Client()
    assert victim.get(login_url).status_code == 200
    response = victim.post(login_url, {"username": admin_b.email, "password": PASSWORD, "next": join})
    assert response.status_code == 302 and response["Location"] == join
    page = victim.get(join)
    assert 'type="password"' not in text(page) and f"Join {org_a.name}" in text(page)
    response = victim.post(join, {"password": "ignored even if posted"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert Membership.objects.get(organisation=org_a, user=admin_b).role == Role.ADMIN
    assert Membership.objects.get(organisation=org_b, user=admin_b).role == Role.ADMIN
    admin_b.refresh_from_db()
    assert admin_b.check_password(PASSWORD)
    assert "no longer valid" in text(Client().get(join))  # used once
    assert AuditEntry.objects.filter(organisation=org_a, action="invitation.accepted", actor_id=str(admin_b.pk)).exists()


def test_admin_cannot_take_over_a_superuser(org_a, admin_a, django_capture_on_commit_callbacks):
    email = f"root-{secrets.token_hex(4)}@example.org"  # unique: the sign-in throttle lives in Redis across runs
    superuser = get_user_model().objects.create_superuser(username=email, email=email, password=PASSWORD)
    attacker = client_as(admin_a)
    _page, join = invite(attacker, django_capture_on_commit_callbacks, email.upper())
    assert_no_takeover(join, superuser, org_a, attacker)


def test_signed_in_as_someone_else_cannot_accept(org_a, org_b, admin_a, admin_b, django_capture_on_commit_callbacks):
    _page, join = invite(client_as(admin_a), django_capture_on_commit_callbacks, admin_b.email)
    bystander = make_user(org_b, Role.VIEWER)
    client, status = sign_in(bystander.email, PASSWORD)
    assert status == 302
    page = client.get(join)
    assert 'type="password"' not in text(page) and "this invitation is for" in text(page)
    assert client.post(join).status_code == 403
    assert not Membership.objects.filter(organisation=org_a, user__in=[admin_b, bystander]).exists()
    with pytest.raises(Forbidden):
        services.invitation_accept(token=join.rsplit("/", 1)[1], user=bystander)


def test_new_account_chooses_its_first_password(org_a, admin_a, django_capture_on_commit_callbacks):
    _page, join = invite(client_as(admin_a), django_capture_on_commit_callbacks, "Fresh@Example.org", role="VIEWER")
    client = Client()
    page = client.get(join)
    assert 'type="password"' in text(page) and "VIEWER" in text(page)
    assert client.post(join, {"password": "short"}).status_code == 200
    assert not get_user_model().objects.filter(email="fresh@example.org").exists()
    response = client.post(join, {"password": "a much longer passphrase"})
    assert response.status_code == 302
    user = get_user_model().objects.get(email="fresh@example.org")
    assert user.check_password("a much longer passphrase")
    assert Membership.objects.get(organisation=org_a, user=user).role == Role.VIEWER
    assert client.get(reverse("home")).status_code == 200


def test_an_account_made_after_the_invitation_is_not_overwritten(org_a, org_b, admin_a, django_capture_on_commit_callbacks):
    _page, join = invite(client_as(admin_a), django_capture_on_commit_callbacks, "later@example.org")
    later = make_user(org_b, Role.EDITOR, email="later@example.org")  # the account appears before the link is used
    response = Client().post(join, {"password": "attacker chosen passphrase"})
    assert response.status_code == 403
    later.refresh_from_db()
    assert later.check_password(PASSWORD)
    with pytest.raises(Forbidden):
        services.invitation_accept_new_account(token=join.rsplit("/", 1)[1], password="attacker chosen passphrase")
    later.refresh_from_db()
    assert later.check_password(PASSWORD) and not Membership.objects.filter(organisation=org_a, user=later).exists()


def test_resend_emails_a_fresh_link_and_ends_the_old_one(org_a, admin_a, django_capture_on_commit_callbacks):
    admin_client = client_as(admin_a)
    _page, old_join = invite(admin_client, django_capture_on_commit_callbacks, "resend@example.org", role="EDITOR")
    invitation = Invitation.objects.get(organisation=org_a, email="resend@example.org")
    before = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("settings-users"), {"action": "resend", "invitation_id": invitation.id}, follow=True)
    assert response.status_code == 200 and "emailed again" in text(response)
    assert "/join/" not in text(response)
    assert len(mail.outbox) == before + 1 and mail.outbox[-1].to == ["resend@example.org"]
    new_join = JOIN.search(mail.outbox[-1].body).group(1)
    assert new_join != old_join
    assert "no longer valid" in text(Client().get(old_join))
    assert Client().post(old_join, {"password": "a much longer passphrase"}).status_code == 200
    assert not get_user_model().objects.filter(email="resend@example.org").exists()
    client = Client()
    assert client.post(new_join, {"password": "a much longer passphrase"}).status_code == 302
    assert Membership.objects.get(organisation=org_a, user__email="resend@example.org").role == Role.EDITOR
    assert AuditEntry.objects.filter(organisation=org_a, action="invitation.resent", object_id=invitation.id).exists()


def test_only_admins_of_the_org_resend_and_revoked_ones_cannot_be(org_a, org_b, admin_a, admin_b):
    invitation = services.invitation_create(organisation=org_a, actor=Actor.for_user(admin_a), email="x@example.org",
                                            full_name="X Person")
    assert isinstance(invitation, Invitation)  # the service hands back no token
    editor = make_user(org_a, Role.EDITOR)
    assert client_as(editor).post(reverse("settings-users"), {"action": "resend", "invitation_id": invitation.id}).status_code == 403
    other = client_as(admin_b).post(reverse("settings-users"), {"action": "resend", "invitation_id": invitation.id}, follow=True)
    assert "Invitation not found" in text(other)
    services.invitation_revoke(organisation=org_a, actor=Actor.for_user(admin_a), invitation_id=invitation.id)
    response = client_as(admin_a).post(reverse("settings-users"), {"action": "resend", "invitation_id": invitation.id}, follow=True)
    assert "Only an open invitation can be resent" in text(response)


def test_a_sign_up_never_sets_the_password_of_an_existing_account(org_b, admin_b):
    from together.exceptions import Conflict

    with pytest.raises(Conflict):
        services.organisation_create(name="Squatter", slug="squatter-h1", owner_email=admin_b.email.upper(),
                                     owner_password="attacker chosen passphrase")
    admin_b.refresh_from_db()
    assert admin_b.check_password(PASSWORD)
    assert not Membership.objects.filter(user=admin_b, organisation__slug="squatter-h1").exists()

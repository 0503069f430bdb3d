"""Introductions end to end: the API, the invite email (Django's outbox), the public
invite page with sign-up or sign-in, accept, link, revoke, and the hourly expiry."""
from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone

from organisations.models import AuditEntry, Membership, Role
from recommendations import services
from recommendations.models import Introduction, RecipientOrgAccountLink
from recommendations.tasks import introductions_expire_sweep
from tests.conftest import make_org
from tests.recommendations.conftest import SYSTEM, audit_actions, make_user
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/introductions"
BODY = {
    "invitee_email": "contact@partner.example.org",
    "invitee_org_name_hint": "Riverbank Action Fund",
    "invitee_message": "We'd love to direct some of our members' giving to you.",
}


def introduce(client, capture, **overrides):
    with capture(execute=True):
        response = client.post(URL, {**BODY, **overrides}, format="json")
    assert response.status_code == 201, response.content
    message = mail.outbox[-1]
    token = re.search(r"/introductions/(\S+)", message.body).group(1)
    return response.json(), token, message


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


def test_create_sends_the_invite_email_and_stores_only_a_hash(org, write_client, read_client, capture):
    body, token, message = introduce(write_client, capture)
    assert body["status"] == "pending" and body["object"] == "introduction"
    assert body["invitee_email"] == BODY["invitee_email"]
    assert body["invitee_org_name_hint"] == BODY["invitee_org_name_hint"]
    assert body["invitee_message"] == BODY["invitee_message"]
    assert body["recipient_org_account_link_id"] is None and body["recipient_organisation_id"] is None
    created = dt.datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - created) - dt.timedelta(days=14)) < dt.timedelta(seconds=1)
    assert message.to == [BODY["invitee_email"]]
    assert org.name in message.subject
    assert f"{settings.SITE_URL}/introductions/{token}" in message.body
    assert BODY["invitee_message"] in message.body
    stored = Introduction.objects.get(pk=body["id"])
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Introduction.objects.filter(pk=body["id"]).values().get())
    assert token not in str(list(AuditEntry.objects.values_list("after", flat=True)))
    assert token not in write_client.get(f"{URL}/{body['id']}").content.decode()
    entry = AuditEntry.objects.for_organisation(org).get(action="introduction.created")
    assert entry.after == read_client.get(f"{URL}/{body['id']}").json()


def test_no_email_when_the_transaction_rolls_back(org, capture):
    with capture(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                services.introduction_create(organisation=org, actor=SYSTEM, invitee_email="x@example.org")
                raise RuntimeError("abort")
    assert mail.outbox == [] and not Introduction.objects.exists()


@pytest.mark.parametrize("body, code, param", [
    ({"invitee_org_name_hint": "x"}, "invalid_request", "invitee_email"),
    ({"invitee_email": "not-an-email"}, "validation_failed", "invitee_email"),
    ({"invitee_email": 5}, "invalid_request", "invitee_email"),
    ({"invitee_email": "a@b.org", "plan": "RAISE"}, "invalid_request", "plan"),
])
def test_bad_bodies(write_client, body, code, param):
    assert_error(write_client.post(URL, body, format="json"), 400, code, param=param)
    assert mail.outbox == []


def test_read_key_cannot_introduce(read_client):
    assert_error(read_client.post(URL, BODY, format="json"), 403, "forbidden")


# --- the invitee's side ------------------------------------------------------------------------------

def test_full_lifecycle_with_sign_up(org, write_client, read_client, capture):
    body, token, _ = introduce(write_client, capture, label="Riverbank main")
    browser = Client()
    page = browser.get(f"/introductions/{token}")
    assert page.status_code == 200 and org.name in page.content.decode()
    assert read_client.get(f"{URL}/{body['id']}").json()["status"] == "viewed"
    browser.get(f"/introductions/{token}")  # viewing again records nothing new
    assert audit_actions(org, body["id"]) == ["introduction.created", "introduction.viewed"]

    signup = browser.post(f"/introductions/{token}", {
        "action": "signup", "full_name": "Rita Banks", "email": "Rita@Partner.example.org",
        "password": "a long enough passphrase", "organisation_name": "Riverbank Action Fund"})
    assert signup.status_code == 200, signup.content.decode()
    membership = Membership.objects.select_related("organisation", "user").get(user__email="rita@partner.example.org")
    assert membership.role == Role.ADMIN and membership.organisation.name == "Riverbank Action Fund"
    recipient = membership.organisation
    assert read_client.get(f"{URL}/{body['id']}").json()["status"] == "viewed"  # signing up is not accepting

    accepted = browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": recipient.id})
    assert accepted.status_code == 200, accepted.content.decode()
    after_accept = read_client.get(f"{URL}/{body['id']}").json()
    assert after_accept["status"] == "accepted" and after_accept["recipient_organisation_id"] == recipient.id
    assert after_accept["accepted_at"] is not None and after_accept["recipient_org_account_link_id"] is None

    linked = browser.post(f"/introductions/{token}", {"action": "link"})
    assert linked.status_code == 200 and "Linked" in linked.content.decode()
    final = read_client.get(f"{URL}/{body['id']}").json()
    assert final["status"] == "linked" and final["linked_at"] is not None
    link = RecipientOrgAccountLink.objects.get(pk=final["recipient_org_account_link_id"])
    assert link.organisation_id == org.id and link.recipient_organisation_id == recipient.id
    assert link.introduction_id == body["id"] and link.label == "Riverbank main"
    api_link = read_client.get(f"/api/v1/recipient-accounts/{link.id}").json()
    assert api_link["introduction_id"] == body["id"] and api_link["is_active"] is True

    # Events, in order, each carrying the object as the API renders it.
    assert audit_actions(org)[-5:] == ["introduction.created", "introduction.viewed", "introduction.accepted",
                                       "recipient_org_account_link.created", "introduction.linked"]
    link_created = AuditEntry.objects.for_organisation(org).get(action="recipient_org_account_link.created")
    assert link_created.after["introduction_id"] == body["id"] and link_created.after == api_link
    assert AuditEntry.objects.for_organisation(org).get(action="introduction.linked").after == final
    # The recipient sees the link on its own trail, and the invite link is spent.
    assert "distribution_link.created" in audit_actions(recipient)
    again = browser.post(f"/introductions/{token}", {"action": "link"})
    assert again.status_code == 400
    assert RecipientOrgAccountLink.objects.filter(recipient_organisation=recipient).count() == 1


def test_sign_in_path_with_an_existing_organisation(org, write_client, read_client, capture):
    body, token, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN, password="partner-password-1")
    browser = Client()
    page = browser.get(f"/introductions/{token}")
    assert f"/login/?next=/introductions/{token}" in page.content.decode()
    assert browser.login(username=user.username, password="partner-password-1")
    page = browser.get(f"/introductions/{token}")
    assert partner.name in page.content.decode()
    assert browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": partner.id}).status_code == 200
    assert browser.post(f"/introductions/{token}", {"action": "link"}).status_code == 200
    assert read_client.get(f"{URL}/{body['id']}").json()["status"] == "linked"


def test_only_an_admin_of_another_organisation_can_accept(org, write_client, capture):
    body, token, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    editor = make_user(partner, Role.EDITOR)
    inviter_admin = make_user(org, Role.ADMIN)
    for user, target in ((editor, partner), (inviter_admin, org)):
        browser = Client()
        browser.force_login(user)
        assert target.name not in [o.name for o in services.introduction_eligible_organisations(
            introduction=Introduction.objects.get(pk=body["id"]), user=user)]
        refused = browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": target.id})
        assert refused.status_code == 400
    assert Introduction.objects.get(pk=body["id"]).status == "pending"  # refused accepts record nothing
    # The service refuses too, whatever the page offers.
    from together.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.introduction_accept(introduction_id=body["id"], user=editor, recipient_organisation=partner)
    with pytest.raises(ValidationFailed):
        services.introduction_accept(introduction_id=body["id"], user=inviter_admin, recipient_organisation=org)


def test_anonymous_cannot_accept(org, write_client, capture):
    body, token, _ = introduce(write_client, capture)
    assert Client().post(f"/introductions/{token}", {"action": "accept", "organisation_id": org.id}).status_code == 403
    assert Introduction.objects.get(pk=body["id"]).status == "pending"


def test_a_user_may_create_an_organisation_to_accept_with(org, write_client, capture):
    body, token, _ = introduce(write_client, capture)
    user = make_user(org, Role.VIEWER)
    browser = Client()
    browser.force_login(user)
    browser.post(f"/introductions/{token}", {"action": "create_org", "organisation_name": "Brand New Partner"})
    new = Membership.objects.get(user=user, organisation__name="Brand New Partner")
    assert new.role == Role.ADMIN and new.organisation.sandbox is not None
    assert browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": new.organisation_id}).status_code == 200


def test_sign_up_with_a_taken_email_is_refused_without_touching_the_account(org, write_client, capture):
    _, token, _ = introduce(write_client, capture)
    existing = make_user(make_org("Partner"), Role.ADMIN, password="original-password-1")
    response = Client().post(f"/introductions/{token}", {
        "action": "signup", "full_name": "Mallory", "email": existing.email, "password": "hijack attempt 123",
        "organisation_name": "Evil"})
    assert response.status_code == 400 and "sign in instead" in response.content.decode()
    existing.refresh_from_db()
    assert existing.check_password("original-password-1")


def test_unknown_token_is_404():
    assert Client().get("/introductions/not-a-real-token").status_code == 404


# --- revoke --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reach", ["pending", "viewed", "accepted"])
def test_revoke_from_any_open_state(org, write_client, read_client, capture, reach):
    body, token, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    if reach in ("viewed", "accepted"):
        services.introduction_view(introduction_id=body["id"])
    if reach == "accepted":
        services.introduction_accept(introduction_id=body["id"], user=user, recipient_organisation=partner)
    assert read_client.get(f"{URL}/{body['id']}").json()["status"] == reach
    revoked = write_client.post(f"{URL}/{body['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert audit_actions(org, body["id"])[-1] == "introduction.revoked"
    page = Client().get(f"/introductions/{token}")
    assert "withdrew" in page.content.decode()
    browser = Client()
    browser.force_login(user)
    assert browser.post(f"/introductions/{token}", {"action": "link"}).status_code == 400
    assert not RecipientOrgAccountLink.objects.exists()


def test_revoke_a_terminal_introduction_is_409(org, write_client, capture):
    body, token, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    services.introduction_accept(introduction_id=body["id"], user=user, recipient_organisation=partner)
    services.introduction_link(introduction_id=body["id"], user=user)
    assert_error(write_client.post(f"{URL}/{body['id']}/revoke"), 409, "conflict")
    second, _, _ = introduce(write_client, capture)
    assert write_client.post(f"{URL}/{second['id']}/revoke").status_code == 200
    assert_error(write_client.post(f"{URL}/{second['id']}/revoke"), 409, "conflict")


def test_revoke_needs_write_and_ownership(org, write_client, read_client, other_write_client, capture):
    body, _, _ = introduce(write_client, capture)
    assert_error(read_client.post(f"{URL}/{body['id']}/revoke"), 403, "forbidden")
    assert_error(other_write_client.post(f"{URL}/{body['id']}/revoke"), 404, "not_found")
    assert_error(other_write_client.get(f"{URL}/{body['id']}"), 404, "not_found")
    assert Introduction.objects.get(pk=body["id"]).status == "pending"


# --- expiry ------------------------------------------------------------------------------------------

def test_the_hourly_sweep_expires_open_introductions_past_their_ttl(org, write_client, read_client, capture):
    due_pending, token, _ = introduce(write_client, capture)
    due_viewed, _, _ = introduce(write_client, capture)
    fresh, _, _ = introduce(write_client, capture)
    linked_one, _, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    services.introduction_view(introduction_id=due_viewed["id"])
    services.introduction_accept(introduction_id=linked_one["id"], user=user, recipient_organisation=partner)
    services.introduction_link(introduction_id=linked_one["id"], user=user)
    past = timezone.now() - dt.timedelta(minutes=1)
    Introduction.objects.filter(pk__in=[due_pending["id"], due_viewed["id"], linked_one["id"]]).update(expires_at=past)

    assert introductions_expire_sweep() == 2
    statuses = {i: read_client.get(f"{URL}/{i}").json()["status"] for i in (due_pending["id"], due_viewed["id"], fresh["id"], linked_one["id"])}
    assert statuses == {due_pending["id"]: "expired", due_viewed["id"]: "expired", fresh["id"]: "pending", linked_one["id"]: "linked"}
    assert audit_actions(org, due_pending["id"])[-1] == "introduction.expired"
    assert read_client.get(f"{URL}/{due_pending['id']}").json()["expired_at"] is not None
    assert introductions_expire_sweep() == 0
    assert "expired" in Client().get(f"/introductions/{token}").content.decode()
    assert_error(write_client.post(f"{URL}/{due_pending['id']}/revoke"), 409, "conflict")
    assert [x["id"] for x in read_client.get(URL, {"status": "expired"}).json()["data"]] == [due_viewed["id"], due_pending["id"]]


def test_an_expired_link_is_refused_between_sweeps(org, write_client, read_client, capture):
    body, token, _ = introduce(write_client, capture)
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    services.introduction_accept(introduction_id=body["id"], user=user, recipient_organisation=partner)
    Introduction.objects.filter(pk=body["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    browser = Client()
    browser.force_login(user)
    response = browser.post(f"/introductions/{token}", {"action": "link"})
    assert "expired" in response.content.decode()
    assert read_client.get(f"{URL}/{body['id']}").json()["status"] == "expired"
    assert not RecipientOrgAccountLink.objects.exists()


def test_beat_runs_the_sweep_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["expire-introductions"]
    assert entry["task"] == "recommendations.tasks.introductions_expire_sweep" and entry["schedule"] == 3600.0
    assert introductions_expire_sweep.name == entry["task"]


# --- sandbox, lists ----------------------------------------------------------------------------------

def test_a_sandbox_introduction_binds_a_sandbox_organisation(org, sandbox, sandbox_client, write_client, capture):
    body, token, message = introduce(sandbox_client, capture)
    assert "sandbox" in message.body.lower()
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    eligible = services.introduction_eligible_organisations(introduction=Introduction.objects.get(pk=body["id"]), user=user)
    assert [o.id for o in eligible] == [partner.sandbox.id]
    browser = Client()
    browser.force_login(user)
    browser.get(f"/introductions/{token}")
    assert browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": partner.id}).status_code == 400
    assert browser.post(f"/introductions/{token}", {"action": "accept", "organisation_id": partner.sandbox.id}).status_code == 200
    browser.post(f"/introductions/{token}", {"action": "link"})
    made = RecipientOrgAccountLink.objects.get(introduction_id=body["id"])
    assert made.organisation_id == sandbox.id and made.recipient_organisation_id == partner.sandbox.id
    assert write_client.get("/api/v1/recipient-accounts").json()["data"] == []
    assert_error(write_client.get(f"{URL}/{body['id']}"), 404, "not_found")
    assert sandbox_client.get("/api/v1/recipient-accounts").json()["data"][0]["introduction_id"] == body["id"]


def test_list_and_filters(org, write_client, read_client, capture):
    first, _, _ = introduce(write_client, capture)
    second, _, _ = introduce(write_client, capture, invitee_email="other@example.org")
    write_client.post(f"{URL}/{first['id']}/revoke")
    assert [x["id"] for x in read_client.get(URL).json()["data"]] == [second["id"], first["id"]]
    assert [x["id"] for x in read_client.get(URL, {"status": "revoked"}).json()["data"]] == [first["id"]]
    assert [x["id"] for x in read_client.get(URL, {"invitee_email": "OTHER@example.org"}).json()["data"]] == [second["id"]]
    assert_error(read_client.get(URL, {"status": "PENDING"}), 400, "validation_failed", param="status")


def test_the_lifecycle_becomes_webhook_events_of_the_inviter(org, capture):
    """The webhooks app turns these audit entries into events in the same transaction."""
    from webhooks.models import Event

    with capture(execute=True):
        intro = services.introduction_create(organisation=org, actor=SYSTEM, invitee_email="p@example.org").introduction
    partner = make_org("Partner")
    user = make_user(partner, Role.ADMIN)
    services.introduction_view(introduction_id=intro.id)
    services.introduction_accept(introduction_id=intro.id, user=user, recipient_organisation=partner)
    made = services.introduction_link(introduction_id=intro.id, user=user)
    events = list(Event.objects.for_organisation(org).order_by("created_at", "id").values_list("type", "data"))
    assert [t for t, _ in events] == ["introduction.created", "introduction.viewed", "introduction.accepted",
                                      "recipient_org_account_link.created", "introduction.linked"]
    assert events[3][1]["introduction_id"] == intro.id and events[3][1]["id"] == made.id
    assert events[4][1]["recipient_org_account_link_id"] == made.id
    assert not Event.objects.for_organisation(partner).exists()

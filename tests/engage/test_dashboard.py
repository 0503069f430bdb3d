"""Engage → Forms and Engage → Checkout links in the dashboard (Django test client):
ADMIN and EDITOR write, VIEWER reads, another organisation's objects are 404, and
every refusal lands beside its field."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from engage import services
from engage.models import CheckoutLink, DonationForm, FormStatus, LinkStatus
from organisations.models import Role
from tests.dashboard.conftest import client_as, make_user
from tests.engage.test_services import ACTOR, connect, make_form
from tests.support.api import make_donor

pytestmark = pytest.mark.django_db

FORM_POST = {
    "name": "Spring appeal", "title": "Help the riverbank", "description": "", "slug": "dash-spring", "status": "DRAFT",
    "suggested_amounts": "25, 50, 100, 250", "allow_custom": "on", "default_amount": "50", "minimum": "", "maximum": "",
    "allow_recurring": "on", "recurring_frequencies": ["MONTHLY"], "phone_visibility": "OPTIONAL",
    "address_visibility": "OPTIONAL", "revenue_code": "WEB", "campaign": "",
}


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.RATE_LIMIT_ENABLED = False


def test_nav_and_lists_render_for_every_role(org):
    connect(org)
    donor = make_donor(org, first_name="Jane", last_name="Smith", email="jane@example.org")
    make_form(org, status="ACTIVE", slug="nav-form")
    link = services.checkout_link_create(organisation=org, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        client = client_as(make_user(org, role))
        home = client.get("/").content.decode()
        assert 'href="/engage/forms/"' in home and ">Engage<" in home
        forms_page = client.get("/engage/forms/").content.decode()
        assert "/donate/nav-form" in forms_page
        assert ("New form" in forms_page) == (role != Role.VIEWER)
        links_page = client.get("/engage/checkout-links/").content.decode()
        assert "$250" in links_page and f"/c/{link.code}" in links_page and "Jane Smith" in links_page
        assert ("New link" in links_page) == (role != Role.VIEWER)
        detail = client.get(f"/engage/checkout-links/{link.id}/").content.decode()
        assert f"/c/{link.code}" in detail and ("Cancel link" in detail) == (role != Role.VIEWER)


def test_viewer_cannot_write(org):
    connect(org)
    donor = make_donor(org, email="v@example.org")
    form = make_form(org)
    link = services.checkout_link_create(organisation=org, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    viewer = client_as(make_user(org, Role.VIEWER))
    assert viewer.get("/engage/forms/new").status_code == 403
    assert viewer.post("/engage/forms/new", FORM_POST).status_code == 403
    assert viewer.post(f"/engage/forms/{form.id}/", {"archive": "1"}).status_code == 403
    assert viewer.get("/engage/checkout-links/new").status_code == 403
    assert viewer.post(f"/engage/checkout-links/{link.id}/", {"cancel": "1"}).status_code == 403
    form.refresh_from_db()
    link.refresh_from_db()
    assert form.status == FormStatus.DRAFT and link.status == LinkStatus.ACTIVE
    page = viewer.get(f"/engage/forms/{form.id}/").content.decode()
    assert "Save form" not in page and "Suggested amounts" in page


def test_editor_creates_edits_and_archives_a_form(org):
    connect(org)
    editor = client_as(make_user(org, Role.EDITOR))
    response = editor.post("/engage/forms/new", FORM_POST)
    assert response.status_code == 302
    form = DonationForm.objects.get(organisation=org, slug="dash-spring")
    assert form.suggested_amounts_cents == [2500, 5000, 10000, 25000] and form.default_amount_cents == 5000
    assert form.revenue_code == "WEB" and form.recurring_frequencies == ["MONTHLY"]
    page = editor.get(f"/engage/forms/{form.id}/").content.decode()
    assert "/donate/dash-spring" in page and "Preview" in page and 'value="25, 50, 100, 250"' in page
    # a refusal lands beside its field
    bad = editor.post(f"/engage/forms/{form.id}/", {**FORM_POST, "default_amount": "75"})
    assert bad.status_code == 400 and "one of the suggested amounts" in bad.content.decode()
    ok = editor.post(f"/engage/forms/{form.id}/", {**FORM_POST, "status": "ACTIVE"})
    assert ok.status_code == 302
    form.refresh_from_db()
    assert form.status == FormStatus.ACTIVE
    taken = editor.post("/engage/forms/new", {**FORM_POST, "name": "Copy"})
    assert taken.status_code == 400 and "already taken" in taken.content.decode()
    editor.post(f"/engage/forms/{form.id}/", {"archive": "1"})
    form.refresh_from_db()
    assert form.status == FormStatus.ARCHIVED
    # an archived form changes no more: the service's refusal is shown, nothing is stored
    late = editor.post(f"/engage/forms/{form.id}/", {**FORM_POST, "name": "Renamed"})
    assert late.status_code == 400 and "An archived form cannot be changed." in late.content.decode()
    form.refresh_from_db()
    assert (form.name, form.status) == (FORM_POST["name"], FormStatus.ARCHIVED)


def test_activation_without_stripe_says_where_to_connect(org):
    editor = client_as(make_user(org, Role.EDITOR))
    page = editor.get("/engage/forms/").content.decode()
    assert "not connected" in page
    response = editor.post("/engage/forms/new", {**FORM_POST, "status": "ACTIVE"})
    assert response.status_code == 400 and "Settings → Payments" in response.content.decode()
    assert not DonationForm.objects.filter(organisation=org).exists()


def test_new_link_page_when_not_connected(org):
    editor = client_as(make_user(org, Role.EDITOR))
    page = editor.get("/engage/checkout-links/new").content.decode()
    assert "Stripe is not connected" in page and "Create link" not in page
    donor = make_donor(org, email="x@example.org")
    response = editor.post("/engage/checkout-links/new", {"donor": donor.id, "amount": "250", "expires_in_days": "30"})
    assert response.status_code == 400 and not CheckoutLink.objects.exists()


def test_editor_creates_and_cancels_a_link(org):
    connect(org)
    donor = make_donor(org, first_name="Jane", last_name="Smith", email="jane@example.org")
    no_email = make_donor(org, first_name="No", last_name="Email", email=None)
    editor = client_as(make_user(org, Role.EDITOR))
    page = editor.get(f"/engage/checkout-links/new?donor={donor.id}").content.decode()
    assert "Chosen: Jane Smith" in page and "Suggest" in page
    suggest = editor.get("/engage/checkout-links/suggest", {"donor": donor.id, "amount": "1,250.5"}).content.decode()
    assert 'value="$1,250.50 donation from Jane Smith"' in suggest
    refused = editor.post("/engage/checkout-links/new", {"donor": no_email.id, "amount": "250", "expires_in_days": "30"})
    assert refused.status_code == 400 and "no email" in refused.content.decode()
    response = editor.post("/engage/checkout-links/new", {
        "donor": donor.id, "amount": "250", "description": "$250 donation from Jane Smith", "expires_in_days": "7",
        "consent_text": "I am an Australian citizen.", "revenue_code": "LINKS", "campaign": "",
    })
    assert response.status_code == 302
    link = CheckoutLink.objects.get(organisation=org)
    assert (link.amount_cents, link.consent_text, link.revenue_code) == (25000, "I am an Australian citizen.", "LINKS")
    assert timezone.now() + dt.timedelta(days=6) < link.expires_at < timezone.now() + dt.timedelta(days=7, minutes=1)
    detail = editor.get(response["Location"]).content.decode()
    assert f"/c/{link.code}" in detail and "Copy URL" in detail
    editor.post(f"/engage/checkout-links/{link.id}/", {"cancel": "1"})
    link.refresh_from_db()
    assert link.status == LinkStatus.CANCELED
    again = editor.post(f"/engage/checkout-links/{link.id}/", {"cancel": "1"}, follow=True).content.decode()
    assert "Cancelled" in again
    cancelled_list = editor.get("/engage/checkout-links/?status=CANCELED").content.decode()
    assert "Jane Smith" in cancelled_list
    assert "Jane Smith" not in editor.get("/engage/checkout-links/?status=ACTIVE").content.decode()


def test_another_organisations_objects_are_404(org, other_org):
    connect(org)
    donor = make_donor(org, email="mine@example.org")
    form = make_form(org)
    link = services.checkout_link_create(organisation=org, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    stranger = client_as(make_user(other_org, Role.ADMIN))
    assert stranger.get(f"/engage/forms/{form.id}/").status_code == 404
    assert stranger.post(f"/engage/forms/{form.id}/", {"archive": "1"}).status_code == 404
    assert stranger.get(f"/engage/checkout-links/{link.id}/").status_code == 404
    assert stranger.post(f"/engage/checkout-links/{link.id}/", {"cancel": "1"}).status_code == 404
    assert "Seeded" not in stranger.get("/engage/forms/").content.decode()
    # a donor of this organisation is not suggested to the stranger
    assert "mine@example.org" not in stranger.get("/engage/checkout-links/suggest", {"donor": donor.id}).content.decode()

"""The employer link in the staff admin (issue 19): the donor form shows and edits it
with an autocomplete of the same organisation's ORGANISATION donors, and its save goes
through donor_update/donor_create (donations.crm.employer_clean decides; its refusals
come back beside the field, nothing stored; the change is evented and audited)."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from donations import services
from donations.models import Donor
from organisations.models import AuditEntry, Membership
from tests.dashboard.conftest import browser  # noqa: F401 (the module's Chromium)
from together.actors import Actor
from webhooks.models import Event

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def staff_client(*orgs, role="EDITOR"):
    user = User.objects.create_user(username=f"emp-staff-{role}", email=f"emp-{role}@example.org", password="pw", is_staff=True)
    for org in orgs:
        Membership.objects.create(user=user, organisation=org, role=role)
    client = Client()
    client.force_login(user)
    return client


def person(org, **fields):
    return services.donor_create(organisation=org, actor=SYSTEM, **{"first_name": "Ana", "last_name": "Lee",
                                                                     "email": "ana@example.org", **fields})


def company(org, name):
    return services.donor_create(organisation=org, actor=SYSTEM, donor_type="ORGANISATION", organisation_name=name)


def change_body(donor: Donor, **overrides) -> dict:
    body = {name: getattr(donor, name) or "" for name in (
        "donor_type", "first_name", "last_name", "organisation_name", "email", "phone", "address_line1", "address_line2",
        "suburb", "state", "postcode", "country", "notes", "external_id")}
    body["custom_fields"] = json.dumps(donor.custom_fields or {})
    body["employer"] = donor.employer_id or ""
    return body | overrides


def autocomplete(client, **params):
    query = {"app_label": "donations", "model_name": "donor", "field_name": "employer", "term": "", **params}
    response = client.get(reverse("admin:autocomplete"), query)
    assert response.status_code == 200, response.content[:500]
    return {r["id"] for r in response.json()["results"]}


def test_the_donor_page_shows_the_employer_and_saves_it_through_the_service(org):
    ana, acme = person(org), company(org, "Acme Pty Ltd")
    client = staff_client(org)
    url = reverse("admin:donations_donor_change", args=[ana.id])
    page = client.get(url).content.decode()
    assert 'name="employer"' in page and "admin-autocomplete" in page
    assert f"organisation={org.id}&amp;exclude={ana.id}" in page  # the autocomplete asks for this organisation's

    response = client.post(url, change_body(ana, employer=acme.id))
    assert response.status_code == 302, response.content.decode()[:3000]
    ana.refresh_from_db()
    assert ana.employer_id == acme.id
    event = Event.objects.filter(organisation=org, type="donor.updated", data__id=ana.id).latest("occurred_at")
    assert event.data["employer_id"] == acme.id
    assert AuditEntry.objects.filter(organisation=org, action="donor.updated", object_id=ana.id).exists()
    assert acme.organisation_name in client.get(url).content.decode()  # shown once set

    cleared = client.post(url, change_body(ana, employer=""))
    assert cleared.status_code == 302
    ana.refresh_from_db()
    assert ana.employer_id is None


def test_only_this_organisations_organisation_donors_can_be_chosen(org, other_org):
    ana, bob = person(org), person(org, email="bob@example.org", first_name="Bob")
    theirs = company(other_org, "Elsewhere Inc")
    client = staff_client(org, other_org)
    url = reverse("admin:donations_donor_change", args=[ana.id])
    for wrong in (bob.id, theirs.id, ana.id):  # a person, another organisation's, the donor itself
        response = client.post(url, change_body(ana, employer=wrong))
        assert response.status_code == 200 and "Select a valid choice" in response.content.decode(), wrong
    ana.refresh_from_db()
    assert ana.employer_id is None


def test_a_service_refusal_shows_beside_the_employer_and_stores_nothing(org, other_org):
    acme = company(org, "Acme Pty Ltd")
    ana = person(org)
    services.donor_update(organisation=org, actor=SYSTEM, donor_id=ana.id, employer_id=acme.id)
    client = staff_client(org, other_org)
    url = reverse("admin:donations_donor_change", args=[ana.id])
    # Becoming an organisation while naming an employer: employer_clean refuses (employer_for_individuals).
    response = client.post(url, change_body(Donor.objects.get(pk=ana.id), donor_type="ORGANISATION", organisation_name="Ana Co"))
    body = response.content.decode()
    assert response.status_code == 200 and "Only an INDIVIDUAL donor names an employer or organisation." in body
    employer_row = body.index("field-employer")
    assert employer_row < body.index("Only an INDIVIDUAL donor") < body.index("field-email")  # beside the employer
    ana.refresh_from_db()
    assert (ana.donor_type, ana.employer_id) == ("INDIVIDUAL", acme.id)

    # Adding a donor: the organisation is chosen in the same form, so another organisation's employer
    # reaches the service, which refuses it as unknown there.
    theirs = company(other_org, "Elsewhere Inc")
    add = client.post(reverse("admin:donations_donor_add"), {
        "organisation": org.id, "donor_type": "INDIVIDUAL", "first_name": "Cy", "email": "cy@example.org",
        "country": "AU", "custom_fields": "{}", "employer": theirs.id})
    assert add.status_code == 200 and f"No donor &#x27;{theirs.id}&#x27; in this organisation." in add.content.decode()
    assert not Donor.objects.filter(email="cy@example.org").exists()
    made = client.post(reverse("admin:donations_donor_add"), {
        "organisation": org.id, "donor_type": "INDIVIDUAL", "first_name": "Cy", "email": "cy@example.org",
        "country": "AU", "custom_fields": "{}", "employer": acme.id})
    assert made.status_code == 302, made.content.decode()[:3000]
    assert Donor.objects.get(email="cy@example.org").employer_id == acme.id


def test_the_employer_autocomplete_offers_organisation_donors_of_the_asked_organisation(org, other_org, sandbox):
    ana, acme, beta = person(org), company(org, "Acme Pty Ltd"), company(org, "Beta Co-op")
    theirs = company(other_org, "Elsewhere Inc")
    stranger = company(sandbox, "Sandbox Org")  # the sandbox twin: the member sees it, but it is another organisation
    client = staff_client(org)
    assert autocomplete(client, organisation=org.id, exclude=acme.id) == {beta.id}
    assert autocomplete(client, organisation=org.id) == {acme.id, beta.id}
    assert ana.id not in autocomplete(client)  # people are never offered
    assert theirs.id not in autocomplete(client) and stranger.id in autocomplete(client)
    assert autocomplete(client, organisation=other_org.id) == set()  # not a member there


@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_autocomplete_offers_only_this_organisations_organisations(org, other_org, live_server, browser):
    from tests.dashboard.conftest import screenshot

    ana, acme = person(org), company(org, "Acme Pty Ltd")
    company(org, "Acorn Collective")
    company(other_org, "Acme Elsewhere")
    person(org, email="acme.person@example.org", first_name="Acme", last_name="Person")
    user = User.objects.create_superuser(username="emp-root", email="emp-root@example.org", password="pw")
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    try:
        page.goto(reverse("admin:donations_donor_change", args=[ana.id]))
        page.locator(".field-employer .select2-selection").click()
        page.locator(".select2-search__field").fill("ac")
        options = page.locator(".select2-results__option:not(.loading-results)")
        options.first.wait_for()
        page.wait_for_timeout(300)
        assert sorted(options.all_text_contents()) == ["Acme Pty Ltd", "Acorn Collective"]
        screenshot(page, "admin-donor-employer-1280")
        options.filter(has_text="Acme Pty Ltd").click()
        page.locator("input[name=_save]").click()
        page.wait_for_url("**/donations/donor/")
    finally:
        context.close()
    ana.refresh_from_db()
    assert ana.employer_id == acme.id

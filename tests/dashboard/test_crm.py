"""Tags, employer links and source fields in the dashboard (issue 19): the Tags
page (EDITOR and ADMIN create, rename, delete; VIEWER reads), a donor's tags on
the donor page, the bulk action on a filtered donors list, the employer field,
the gift form's source fields; and in Chromium, tagging and untagging on the
donor page and the bulk action, with screenshots at 1280 and 390 px."""
from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from donations import crm, services
from donations.models import Donation, Donor, Tag
from organisations.models import Role
from tests.dashboard.conftest import client_as, make_user, screenshot, sign_in
from tests.dashboard.helpers import SYSTEM
from webhooks.models import Event


def _content(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_tags_page_roles(org):
    editor, viewer = client_as(make_user(org, Role.EDITOR)), client_as(make_user(org, Role.VIEWER, name="Vi Ewer"))
    assert editor.post(reverse("donor-tags"), {"action": "create", "name": "Volunteer"}).status_code == 302
    tag = Tag.objects.for_organisation(org).get()
    duplicate = editor.post(reverse("donor-tags"), {"action": "create", "name": "volunteer"})
    assert duplicate.status_code == 400 and "already exists" in _content(duplicate)
    assert editor.post(reverse("donor-tags"), {"action": "rename", "tag_id": tag.id, "name": "Volunteers"}).status_code == 302
    tag.refresh_from_db()
    assert tag.name == "Volunteers"
    page = _content(viewer.get(reverse("donor-tags")))
    assert "Volunteers" in page and "Create tag" not in page and "Rename" not in page
    assert viewer.post(reverse("donor-tags"), {"action": "delete", "tag_id": tag.id}).status_code == 403
    assert editor.post(reverse("donor-tags"), {"action": "delete", "tag_id": tag.id}).status_code == 302
    assert not Tag.objects.for_organisation(org).exists()


@pytest.mark.django_db
def test_another_organisations_tag_cannot_be_renamed(org, other_org):
    theirs = crm.tag_create(organisation=other_org, actor=SYSTEM, name="Theirs")
    editor = client_as(make_user(org, Role.EDITOR))
    response = editor.post(reverse("donor-tags"), {"action": "rename", "tag_id": theirs.id, "name": "Mine"})
    assert response.status_code == 400 and "not found" in _content(response).lower()
    theirs.refresh_from_db()
    assert theirs.name == "Theirs"


@pytest.mark.django_db
def test_bulk_action_tags_the_filtered_list_only(org):
    editor = client_as(make_user(org, Role.EDITOR))
    ann = services.donor_create(organisation=org, actor=SYSTEM, first_name="Ann", postcode="3067", email="ann@example.org")
    bob = services.donor_create(organisation=org, actor=SYSTEM, first_name="Bob", postcode="3067", email="bob@example.org")
    cat = services.donor_create(organisation=org, actor=SYSTEM, donor_type="ORGANISATION", organisation_name="Cat Co")
    listing = _content(editor.get(reverse("donors") + "?donor_type=INDIVIDUAL"))
    assert "Tag every donor in this list" in listing
    response = editor.post(reverse("donor-tags"), {"action": "bulk_add", "tags": "Spring, Doorknock",
                                                   "filter": "donor_type=INDIVIDUAL&ordering=name&starting_after=x"})
    assert response.status_code == 302 and response["Location"] == reverse("donors") + "?donor_type=INDIVIDUAL"
    assert {d.id: d.tags for d in Donor.objects.for_organisation(org)} == {
        ann.id: ["Doorknock", "Spring"], bob.id: ["Doorknock", "Spring"], cat.id: []}
    assert Event.objects.filter(organisation=org, type="donor.tagged").count() == 2
    editor.post(reverse("donor-tags"), {"action": "bulk_remove", "tags": "spring", "filter": "q=ann"})
    assert Donor.objects.get(pk=ann.id).tags == ["Doorknock"] and Donor.objects.get(pk=bob.id).tags == ["Doorknock", "Spring"]
    # the list filters on a tag
    filtered = _content(editor.get(reverse("donors") + "?tag=spring"))
    assert "Bob" in filtered and "Ann" not in filtered


@pytest.mark.django_db
def test_employer_on_the_donor_form_and_page(org, other_org):
    editor = client_as(make_user(org, Role.EDITOR))
    acme = services.donor_create(organisation=org, actor=SYSTEM, donor_type="ORGANISATION", organisation_name="Acme Pty Ltd")
    person = services.donor_create(organisation=org, actor=SYSTEM, first_name="Pat", last_name="Lee")
    form = _content(editor.get(reverse("donor-edit", args=[person.id])))
    assert 'list="employer-options"' in form and 'hx-get="/donors/employer-options"' in form
    # the type-ahead: ORGANISATION donors of this organisation only
    services.donor_create(organisation=other_org, actor=SYSTEM, donor_type="ORGANISATION", organisation_name="Acme Foreign")
    options = _content(editor.get(reverse("donor-employer-options") + "?employer_id=acme"))
    assert options.strip() == f'<option value="{acme.id}">Acme Pty Ltd</option>'
    assert _content(editor.get(reverse("donor-employer-options") + "?employer_id=pat")).strip() == ""
    response = editor.post(reverse("donor-edit", args=[person.id]), {"donor_type": "INDIVIDUAL", "first_name": "Pat",
                                                                     "last_name": "Lee", "country": "AU", "employer_id": acme.id})
    assert response.status_code == 302, _content(response)
    person.refresh_from_db()
    assert person.employer_id == acme.id
    assert f'<option value="{acme.id}">Acme Pty Ltd</option>' in _content(editor.get(reverse("donor-edit", args=[person.id])))
    assert "Acme Pty Ltd" in _content(editor.get(reverse("donor-detail", args=[person.id])))
    assert "Pat Lee" in _content(editor.get(reverse("donor-detail", args=[acme.id])))
    # a person as employer is refused beside the field
    other = services.donor_create(organisation=org, actor=SYSTEM, first_name="Sam")
    refused = editor.post(reverse("donor-edit", args=[person.id]), {"donor_type": "INDIVIDUAL", "first_name": "Pat",
                                                                    "country": "AU", "employer_id": other.id})
    assert refused.status_code == 200 and "must be a donor of type ORGANISATION" in _content(refused)
    person.refresh_from_db()
    assert person.employer_id == acme.id


@pytest.mark.django_db
def test_gift_form_records_source_fields_and_refuses_a_bad_code(org):
    editor = client_as(make_user(org, Role.EDITOR))
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Kim")
    base = {"donor": donor.id, "method": "CASH", "amount": "25", "donation_date": "2027-03-16"}
    refused = editor.post(reverse("gift-new"), {**base, "source_code": "bad code"})
    assert refused.status_code == 400 and "source_code may hold" in _content(refused)
    assert not Donation.objects.for_organisation(org).exists()
    response = editor.post(reverse("gift-new"), {**base, "source_code": "STALL-1", "referrer": "Jo", "utm_campaign": "fair"})
    assert response.status_code == 302, _content(response)
    gift = Donation.objects.for_organisation(org).get()
    assert (gift.source_code, gift.referrer, gift.utm_campaign, gift.utm_source) == ("STALL-1", "Jo", "fair", None)
    page = _content(editor.get(reverse("donation-detail", args=[gift.id])))
    assert "STALL-1" in page and "referred by Jo" in page
    assert gift.id in _content(editor.get(reverse("donations") + "?source_code=stall-1"))
    assert gift.id not in _content(editor.get(reverse("donations") + "?source_code=other"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_tagging_on_the_donor_page_and_in_bulk(page, context, live_server, org):
    editor = make_user(org, Role.EDITOR, name="Ed Itor")
    acme = services.donor_create(organisation=org, actor=SYSTEM, donor_type="ORGANISATION", organisation_name="Acme Pty Ltd")
    kira = services.donor_create(organisation=org, actor=SYSTEM, first_name="Kira", last_name="Okafor",
                                 email="kira@example.org", employer_id=acme.id)
    for n in range(3):
        services.donor_create(organisation=org, actor=SYSTEM, first_name=f"Vol{n}", last_name="Unteer", postcode="3067")
    sign_in(context, editor, live_server)

    page.goto(f"/donors/{kira.id}/")
    expect(page.locator("#donor-employer")).to_have_text("Acme Pty Ltd")
    expect(page.locator("#donor-tags")).to_contain_text("No tags yet.")
    page.get_by_label("Add tags").fill("Major donor, Volunteer")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("Tagged Major donor, Volunteer.")
    expect(page.locator("#donor-tags li.tag a")).to_have_text(["Major donor", "Volunteer"])
    screenshot(page, "crm-donor-tags-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "crm-donor-tags-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Remove tag Volunteer").click()
    expect(page.locator(".messages")).to_contain_text("Removed Volunteer.")
    expect(page.locator("#donor-tags li.tag a")).to_have_text(["Major donor"])
    assert Donor.objects.get(pk=kira.id).tags == ["Major donor"]

    # bulk: every donor of the filtered list, not only the page
    page.goto("/donors/?q=unteer")
    page.locator("details.bulk-tags summary").click()
    page.get_by_label("Tags (separate with commas)").fill("Doorknock")
    page.get_by_role("button", name="Add to all").click()
    expect(page.locator(".messages")).to_contain_text("Tagged 3 donors with Doorknock.")
    expect(page.get_by_label("Search name, email or organisation")).to_have_value("unteer")
    screenshot(page, "crm-donor-list-bulk-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "crm-donor-list-bulk-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert sorted(d.first_name for d in Donor.objects.for_organisation(org) if d.tags == ["Doorknock"]) == ["Vol0", "Vol1", "Vol2"]
    assert Donor.objects.get(pk=kira.id).tags == ["Major donor"]

    # the employer type-ahead fills the field's datalist from what is typed
    vol = Donor.objects.for_organisation(org).get(first_name="Vol0")
    page.goto(f"/donors/{vol.id}/edit")
    page.get_by_label("Employer or organisation").press_sequentially("acme", delay=30)
    expect(page.locator(f"#employer-options option[value='{acme.id}']")).to_have_count(1)
    page.get_by_label("Employer or organisation").fill(acme.id)
    page.get_by_role("button", name="Save donor").click()
    expect(page.locator("#donor-employer")).to_have_text("Acme Pty Ltd")
    screenshot(page, "crm-donor-employer-1280")

    # the gift form's source fields, recorded and shown on the gift's page
    page.goto(f"/gifts/new?donor={kira.id}")
    page.locator("details.source-fields summary").click()
    page.get_by_label("Cash", exact=True).check()
    page.get_by_label("Amount (AUD)").fill("40")
    page.get_by_label("Source code").fill("STALL-7")
    page.get_by_label("UTM campaign").fill("market day")
    screenshot(page, "crm-gift-form-source-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "crm-gift-form-source-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator(".messages")).to_contain_text("Recorded $40.00 from Kira Okafor")
    gift = Donation.objects.for_organisation(org).get(donor=kira)
    assert (gift.source_code, gift.utm_campaign) == ("STALL-7", "market day")
    page.goto(f"/donations/{gift.id}/")
    expect(page.locator("tr.source-row")).to_contain_text("STALL-7")
    page.goto("/donations/?tag=major+donor")
    expect(page.locator("main")).to_contain_text("$40.00")

    page.goto("/donors/tags/")
    expect(page.locator("tr[data-tag='Doorknock'] td.num")).to_have_text("3")
    page.locator("tr[data-tag='Volunteer'] details.tag-delete summary").click()
    page.get_by_role("button", name="Delete “Volunteer”").click()
    expect(page.locator(".messages")).to_contain_text("Tag deleted")
    expect(page.locator("tr[data-tag='Volunteer']")).to_have_count(0)
    screenshot(page, "crm-tags-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "crm-tags-390")

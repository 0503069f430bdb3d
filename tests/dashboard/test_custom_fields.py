"""Custom fields in the dashboard (issue 19): Settings → Custom fields (ADMIN
defines, EDITOR sees), inputs on the donor, gift and gift-edit forms with the
service's refusals beside them, values on the pages, filters on the lists; and
in Chromium, an ADMIN defines a field and an EDITOR fills it on the gift form."""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from donations import services
from donations.custom_fields import custom_field_create
from donations.models import CustomField, Donation, Donor
from organisations.models import Role
from tests.dashboard.conftest import client_as, make_user, screenshot, sign_in
from tests.dashboard.helpers import SYSTEM

DAY = "2027-03-15"


def _content(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_admin_defines_and_archives_editor_only_sees(org):
    admin, editor = client_as(make_user(org, Role.ADMIN)), client_as(make_user(org, Role.EDITOR, name="Ed Itor"))
    response = admin.post(reverse("custom-fields"), {"applies_to": "DONATION", "label": "Region", "key": "region",
                                                     "field_type": "CHOICE", "choices": "North\nSouth\n"})
    assert response.status_code == 302, _content(response)
    field = CustomField.objects.get(organisation=org, key="region")
    assert (field.applies_to, field.choices, field.required) == ("DONATION", ["North", "South"], False)
    # A bad key comes back beside its input; nothing stored.
    response = admin.post(reverse("custom-fields"), {"applies_to": "DONOR", "label": "X", "key": "Bad key", "field_type": "TEXT"})
    assert response.status_code == 400 and "lower-case letters" in _content(response)
    assert CustomField.objects.filter(organisation=org).count() == 1

    page = _content(editor.get(reverse("custom-fields")))
    assert "Region" in page and "Only ADMINs define custom fields." in page
    assert editor.post(reverse("custom-fields"), {"applies_to": "DONOR", "label": "Y", "key": "y", "field_type": "TEXT"}).status_code == 403
    assert editor.post(reverse("custom-field-edit", args=[field.id]), {"action": "archive"}).status_code == 403

    response = admin.post(reverse("custom-field-edit", args=[field.id]), {"action": "archive"})
    assert response.status_code == 302
    field.refresh_from_db()
    assert field.archived_at is not None
    # Archived: no input on the gift form any more.
    assert 'name="cf_region"' not in _content(editor.get(reverse("gift-new")))
    admin.post(reverse("custom-field-edit", args=[field.id]), {"action": "restore"})
    assert 'name="cf_region"' in _content(editor.get(reverse("gift-new")))


@pytest.mark.django_db
def test_donor_form_values_errors_page_and_filter(org):
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONOR", key="member_since", label="Member since",
                        field_type="DATE", required=True)
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONOR", key="volunteer", label="Volunteer",
                        field_type="BOOLEAN")
    editor = client_as(make_user(org, Role.EDITOR))
    form = _content(editor.get(reverse("donor-new")))
    assert 'name="cf_member_since"' in form and 'name="cf_volunteer"' in form

    # Required: refused by the form's own required input.
    response = editor.post(reverse("donor-new"), {"donor_type": "INDIVIDUAL", "email": "a@example.org", "country": "AU"})
    assert response.status_code == 200 and not Donor.objects.filter(organisation=org).exists()
    # A value only the service can judge lands beside its input.
    response = editor.post(reverse("donor-new"), {"donor_type": "INDIVIDUAL", "email": "a@example.org", "country": "AU",
                                                   "cf_member_since": "1850-01-01"})
    assert 'id="id_cf_member_since_error"' in _content(response)
    assert not Donor.objects.filter(organisation=org).exists()

    response = editor.post(reverse("donor-new"), {"donor_type": "INDIVIDUAL", "email": "a@example.org", "country": "AU",
                                                   "cf_member_since": "2019-07-01", "cf_volunteer": "true"})
    assert response.status_code == 302
    donor = Donor.objects.get(organisation=org)
    assert donor.custom_fields == {"member_since": "2019-07-01", "volunteer": True}
    page = _content(editor.get(reverse("donor-detail", args=[donor.id])))
    assert "Member since" in page and "2019-07-01" in page and "Yes" in page
    edit = _content(editor.get(reverse("donor-edit", args=[donor.id])))
    assert 'value="2019-07-01"' in edit

    other = services.donor_create(organisation=org, actor=SYSTEM, email="b@example.org",
                                  custom_fields={"member_since": "2020-01-01"})
    listing = _content(editor.get(reverse("donors") + "?cf_volunteer=true"))
    assert donor.email in listing and other.email not in listing


@pytest.mark.django_db
def test_gift_form_edit_page_and_list_filter(org):
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONATION", key="pledge", label="Pledge",
                        field_type="NUMBER")
    donor = services.donor_create(organisation=org, actor=SYSTEM, email="d@example.org")
    editor = client_as(make_user(org, Role.EDITOR))
    body = {"donor": donor.id, "method": "CHEQUE", "amount": "50", "donation_date": DAY}
    response = editor.post(reverse("gift-new"), body | {"cf_pledge": "lots"})
    assert response.status_code == 400 and 'id="id_cf_pledge_error"' in _content(response)
    assert "Pledge must be a number." in _content(response)
    assert not Donation.objects.filter(organisation=org).exists()

    assert editor.post(reverse("gift-new"), body | {"cf_pledge": "1,500"}).status_code == 302
    gift = Donation.objects.get(organisation=org)
    assert gift.custom_fields == {"pledge": 1500}
    page = _content(editor.get(reverse("donation-detail", args=[gift.id])))
    assert "Pledge" in page and 'value="1500"' in page

    edit = {"amount": "50", "donation_date": DAY, "reference": "", "revenue_code": "", "notes": "", "cf_pledge": "2.5"}
    assert editor.post(reverse("donation-detail", args=[gift.id]), edit).status_code == 302
    gift.refresh_from_db()
    assert gift.custom_fields == {"pledge": 2.5}
    # Emptying it removes the value.
    editor.post(reverse("donation-detail", args=[gift.id]), edit | {"cf_pledge": ""})
    gift.refresh_from_db()
    assert gift.custom_fields == {}

    services.donation_update(organisation=org, actor=SYSTEM, donation_id=gift.id, custom_fields={"pledge": 7})
    listing = _content(editor.get(reverse("donations") + "?cf_pledge=7"))
    assert gift.id in listing
    assert gift.id not in _content(editor.get(reverse("donations") + "?cf_pledge=8"))
    assert "Pledge" in _content(editor.get(reverse("donations")))  # the filter's input


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_admin_defines_a_field_and_an_editor_fills_it_on_the_gift_form(page, context, live_server, org):
    admin = make_user(org, Role.ADMIN, name="Ada Admin")
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Kira", last_name="Okafor",
                                  email="kira@example.org")
    sign_in(context, admin, live_server)
    page.goto("/settings/custom-fields")
    expect(page.get_by_role("heading", level=1)).to_have_text("Custom fields")
    page.get_by_label("Field on").select_option(label="Gifts")
    page.get_by_label("Label").fill("Region")
    page.get_by_label("Key").fill("region")
    page.get_by_label("Type").select_option(label="Choice")
    page.get_by_label("Choices").fill("North\nSouth")
    page.get_by_label("Required on new records").check()
    page.get_by_role("button", name="Add field").click()
    expect(page.locator(".messages")).to_contain_text("Custom field Region added.")
    expect(page.get_by_role("link", name="Region")).to_be_visible()
    screenshot(page, "custom-fields-settings-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "custom-fields-settings-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"/gifts/new?donor={donor.id}")
    expect(page.get_by_role("group", name="More about this gift")).to_be_visible()
    page.get_by_label("Cheque", exact=True).check()
    page.get_by_label("Amount (AUD)").fill("120")
    page.get_by_label("Date of the gift").fill(DAY)
    page.get_by_label("Region").select_option("South")
    screenshot(page, "custom-fields-gift-form-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "custom-fields-gift-form-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator(".messages")).to_contain_text("Recorded $120.00 from Kira Okafor")
    gift = Donation.objects.get(organisation=org, donor=donor)
    assert gift.custom_fields == {"region": "South"}
    assert gift.donation_date == dt.date.fromisoformat(DAY)

    page.goto(f"/donations/{gift.id}/")
    expect(page.locator("tr.custom-field")).to_contain_text("Region")
    expect(page.locator("tr.custom-field")).to_contain_text("South")
    screenshot(page, "custom-fields-donation-1280")
    page.goto("/donations/?cf_region=South")
    expect(page.get_by_label("Region")).to_have_value("South")
    expect(page.locator("main")).to_contain_text("$120.00")


@pytest.mark.django_db
def test_gift_form_new_donor_takes_the_donors_custom_fields(org):
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONOR", key="branch", label="Branch", field_type="TEXT",
                        required=True)
    editor = client_as(make_user(org, Role.EDITOR))
    page = _content(editor.get(reverse("gift-new")))
    assert 'name="new_cf_branch"' in page and "Branch (required)" in page
    body = {"new_donor": "on", "new_donor_type": "INDIVIDUAL", "new_email": "new@example.org", "method": "CASH",
            "amount": "20", "donation_date": DAY}
    response = editor.post(reverse("gift-new"), body)
    assert response.status_code == 400 and 'id="id_new_cf_branch_error"' in _content(response)
    assert not Donor.objects.filter(organisation=org).exists() and not Donation.objects.filter(organisation=org).exists()
    assert editor.post(reverse("gift-new"), body | {"new_cf_branch": "Inner West"}).status_code == 302
    assert Donor.objects.get(organisation=org).custom_fields == {"branch": "Inner West"}
    # An existing donor is picked: the new donor's inputs are not asked for.
    donor = services.donor_create(organisation=org, actor=SYSTEM, email="old@example.org", custom_fields={"branch": "North"})
    assert editor.post(reverse("gift-new"), {"donor": donor.id, "method": "CASH", "amount": "5",
                                             "donation_date": DAY}).status_code == 302

"""engage.services: the rules of donation forms and checkout links."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from compliance.models import RevenueCode
from engage import services
from engage.models import CheckoutLink, DonationForm, FormStatus, LinkStatus
from engage.selectors import amount_rows, form_address_rule, link_suggest_description, links_with_status
from organisations.models import AuditEntry
from organisations.services import organisation_stripe_connect
from tests.support.api import make_donor, seed_campaign
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks.models import Event

ACTOR = Actor.system("tests")


def connect(org):
    organisation_stripe_connect(organisation=org, actor=ACTOR, account_id=f"acct_test{org.id[-8:]}")
    org.refresh_from_db()
    return org


def make_form(org, **fields):
    values = {"name": "Spring appeal", "slug": f"spring-{org.id[-6:]}", "title": "Help the riverbank",
              "suggested_amounts_cents": [2500, 5000, 10000]}
    values.update(fields)
    return services.form_create(organisation=org, actor=ACTOR, **values)


@pytest.fixture
def connected(org):
    return connect(org)


@pytest.fixture
def donor(org):
    return make_donor(org, first_name="Jane", last_name="Smith", email="jane@example.org")


# --- forms -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_form_defaults_and_event(org):
    form = make_form(org)
    assert form.status == FormStatus.DRAFT
    assert form.allow_custom and form.allow_recurring and form.recurring_frequencies == ["MONTHLY"]
    assert form.phone_visibility == "OPTIONAL" and form.address_visibility == "OPTIONAL"
    assert form.effective_minimum_cents == 100  # the organisation minimum, $1
    event = Event.objects.get(organisation=org, type="form.created")
    assert event.data["id"] == form.id and event.data["object"] == "form" and event.data["url"].endswith(f"/donate/{form.slug}")


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["Spring", "spring appeal", "spring--appeal", "-spring", "spring-", "spring_appeal", "", "a" * 81, "admin"])
def test_slug_shape_refused(org, slug):
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, slug=slug)
    assert exc.value.param == "slug"
    assert not DonationForm.objects.exists()


@pytest.mark.django_db
def test_slug_is_global_across_organisations(org, other_org):
    make_form(org, slug="shared-slug")
    with pytest.raises(Conflict) as exc:
        make_form(other_org, slug="shared-slug")
    assert exc.value.param == "slug"
    assert "existing_id" not in (exc.value.extra or {})  # another organisation's form is not named


@pytest.mark.django_db
def test_slug_permanent_once_published(connected):
    form = make_form(connected, slug="first-slug")
    form = services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, slug="second-slug")  # DRAFT: allowed
    assert form.slug == "second-slug"
    services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="ACTIVE")
    with pytest.raises(ValidationFailed) as exc:
        services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, slug="third-slug")
    assert exc.value.param == "slug" and exc.value.extra["reason"] == "slug_permanent"


@pytest.mark.django_db
def test_activation_needs_stripe_connected(org):
    form = make_form(org)
    with pytest.raises(ValidationFailed) as exc:
        services.form_update(organisation=org, actor=ACTOR, form_id=form.id, status="ACTIVE")
    assert exc.value.param == "stripe_account"
    form.refresh_from_db()
    assert form.status == FormStatus.DRAFT
    connect(org)
    assert services.form_update(organisation=org, actor=ACTOR, form_id=form.id, status="ACTIVE").status == FormStatus.ACTIVE


@pytest.mark.django_db
def test_status_transitions_and_archive_is_final(connected):
    form = make_form(connected, status="ACTIVE")
    for status in ("PAUSED", "ACTIVE", "DRAFT", "PAUSED"):
        assert services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status=status).status == status
    with pytest.raises(ValidationFailed):
        services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="ARCHIVED")  # only through archive
    archived = services.form_archive(organisation=connected, actor=ACTOR, form_id=form.id)
    assert archived.status == FormStatus.ARCHIVED and archived.archived_at
    again = services.form_archive(organisation=connected, actor=ACTOR, form_id=form.id)  # changes nothing
    assert again.archived_at == archived.archived_at
    assert Event.objects.filter(organisation=connected, type="form.archived").count() == 1
    with pytest.raises(ValidationFailed) as exc:
        services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="ACTIVE")
    assert exc.value.extra["reason"] == "form_archived"
    with pytest.raises(Conflict):  # the slug stays taken
        make_form(connected, slug=form.slug)


@pytest.mark.django_db
def test_amount_rules(org):
    with pytest.raises(ValidationFailed, match="whole dollars"):
        make_form(org, suggested_amounts_cents=[2550])
    with pytest.raises(ValidationFailed, match="differ"):
        make_form(org, suggested_amounts_cents=[2500, 2500])
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, suggested_amounts_cents=[500, 1000], minimum_cents=2000, allow_custom=False)
    assert exc.value.param == "suggested_amounts_cents"
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, default_amount_cents=7500)
    assert exc.value.param == "default_amount_cents"
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, minimum_cents=5000, maximum_cents=2000)
    assert exc.value.param == "maximum_cents"
    form = make_form(org, suggested_amounts_cents=[10000, 500, 2500, 5000], minimum_cents=1000, default_amount_cents=5000)
    assert form.suggested_amounts_cents == [500, 2500, 5000, 10000]  # ascending
    assert form.visible_amounts_cents() == [2500, 5000, 10000]  # under the minimum: hidden


@pytest.mark.django_db
def test_recurring_frequencies(org):
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, recurring_frequencies=["DAILY"])
    assert exc.value.param == "recurring_frequencies"
    with pytest.raises(ValidationFailed):
        make_form(org, allow_recurring=True, recurring_frequencies=[])
    form = make_form(org, recurring_frequencies=["ANNUALLY", "WEEKLY"])
    assert form.recurring_frequencies == ["WEEKLY", "ANNUALLY"]
    assert make_form(org, slug="no-recurring", allow_recurring=False, recurring_frequencies=[]).recurring_frequencies == []


@pytest.mark.django_db
def test_revenue_code_joins_the_library_and_campaign_must_be_active(org):
    make_form(org, revenue_code="WEB-FORM")
    assert RevenueCode.objects.filter(organisation=org, code="WEB-FORM").exists()
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, slug="bad-code", revenue_code="has space")
    assert exc.value.param == "revenue_code"
    campaign = seed_campaign(org, name="Archived")
    from donations.services import campaign_archive

    campaign_archive(organisation=org, actor=ACTOR, campaign_id=campaign.id)
    with pytest.raises(ValidationFailed) as exc:
        make_form(org, slug="with-campaign", campaign_id=campaign.id)
    assert exc.value.param == "campaign_id"


@pytest.mark.django_db
def test_update_of_another_organisations_form_is_not_found(org, other_org):
    form = make_form(org)
    with pytest.raises(NotFound):
        services.form_update(organisation=other_org, actor=ACTOR, form_id=form.id, title="Mine now")


@pytest.mark.django_db
def test_address_rule(org):
    """Regulated gifts always ask the address; only UNREGULATED forms follow their setting."""
    from compliance.services import revenue_code_create

    form = make_form(org, address_visibility="NONE")
    assert form_address_rule(form=form) == "REQUIRED"
    revenue_code_create(organisation=org, actor=ACTOR, code="MERCH", jurisdiction="UNREGULATED")
    form = services.form_update(organisation=org, actor=ACTOR, form_id=form.id, revenue_code="MERCH")
    assert form_address_rule(form=form) == "NONE"
    form = services.form_update(organisation=org, actor=ACTOR, form_id=form.id, address_visibility="REQUIRED")
    assert form_address_rule(form=form) == "REQUIRED"


def test_amount_rows_are_balanced():
    assert [len(r) for r in amount_rows(list(range(1)))] == [1]
    assert [len(r) for r in amount_rows(list(range(4)))] == [4]
    assert [len(r) for r in amount_rows(list(range(5)))] == [3, 2]
    assert [len(r) for r in amount_rows(list(range(6)))] == [3, 3]
    assert [len(r) for r in amount_rows(list(range(7)))] == [4, 3]
    assert [len(r) for r in amount_rows(list(range(9)))] == [3, 3, 3]
    assert amount_rows([]) == []


# --- checkout links --------------------------------------------------------------------------

@pytest.mark.django_db
def test_link_needs_connection(org, donor):
    with pytest.raises(ValidationFailed) as exc:
        services.checkout_link_create(organisation=org, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    assert exc.value.param == "stripe_account" and exc.value.extra["reason"] == "stripe_not_connected"
    assert not CheckoutLink.objects.exists()


@pytest.mark.django_db
def test_link_needs_a_donor_with_email(connected, other_org):
    no_email = make_donor(connected, first_name="No", last_name="Email", email=None)
    with pytest.raises(ValidationFailed) as exc:
        services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=no_email.id, amount_cents=25000)
    assert exc.value.param == "donor_id" and exc.value.extra["reason"] == "donor_email_missing"
    foreign = make_donor(other_org, email="foreign@example.org")
    with pytest.raises(ValidationFailed) as exc:
        services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=foreign.id, amount_cents=25000)
    assert exc.value.param == "donor_id"


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [0, -100, 49, 10**12, "250"])
def test_link_amount(connected, donor, amount):
    with pytest.raises(ValidationFailed) as exc:
        services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=amount)
    assert exc.value.param == "amount_cents"


@pytest.mark.django_db
def test_link_create_defaults_code_and_event(connected, donor):
    before = timezone.now()
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000,
                                         consent_text="  I am an Australian citizen  ", description="$250 donation from Jane Smith")
    other = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    assert link.status == LinkStatus.ACTIVE and link.payment_methods == ["CARD"] and link.currency == "AUD"
    assert link.consent_text == "I am an Australian citizen"
    assert len(link.code) >= 22 and link.code != other.code
    assert before + dt.timedelta(days=30) <= link.expires_at <= timezone.now() + dt.timedelta(days=30)
    event = Event.objects.get(organisation=connected, type="checkout_link.created", data__id=link.id)
    assert event.data["url"].endswith(f"/c/{link.code}") and event.data["status"] == "ACTIVE"


@pytest.mark.django_db
def test_link_refuses_bad_fields(connected, donor):
    base = {"organisation": connected, "actor": ACTOR, "donor_id": donor.id, "amount_cents": 25000}
    cases = [
        ({"consent_text": "x" * 301}, "consent_text"),
        ({"payment_methods": ["BECS"]}, "payment_methods"),
        ({"payment_methods": []}, "payment_methods"),
        ({"payment_methods": ["CASH"]}, "payment_methods"),
        ({"expires_at": timezone.now() - dt.timedelta(hours=1)}, "expires_at"),
        ({"expires_at": timezone.now() + dt.timedelta(days=400)}, "expires_at"),
        ({"currency": "USD"}, "currency"),
    ]
    for extra, param in cases:
        with pytest.raises(ValidationFailed) as exc:
            services.checkout_link_create(**base, **extra)
        assert exc.value.param == param, extra
    assert not CheckoutLink.objects.exists()


@pytest.mark.django_db
def test_link_expired_before_any_job(connected, donor):
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    CheckoutLink.objects.filter(pk=link.id).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    link.refresh_from_db()
    assert link.status == LinkStatus.ACTIVE  # stored
    assert link.effective_status() == LinkStatus.EXPIRED and not link.is_payable
    qs = CheckoutLink.objects.for_organisation(connected)
    assert list(links_with_status(qs, "EXPIRED")) == [link] and not links_with_status(qs, "ACTIVE").exists()
    with pytest.raises(Conflict):
        services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=link.id)
    assert services.checkout_links_expire_due() == 1
    link.refresh_from_db()
    assert link.status == LinkStatus.EXPIRED and link.expired_at
    assert Event.objects.filter(organisation=connected, type="checkout_link.expired", data__id=link.id).count() == 1
    assert services.checkout_links_expire_due() == 0


@pytest.mark.django_db
def test_link_cancel(connected, donor):
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    canceled = services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=link.id)
    assert canceled.status == LinkStatus.CANCELED and canceled.canceled_at
    services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=link.id)  # again: unchanged
    assert Event.objects.filter(organisation=connected, type="checkout_link.canceled").count() == 1
    assert AuditEntry.objects.filter(organisation=connected, action="checkout_link.canceled").count() == 1


@pytest.mark.django_db
def test_link_complete_once(connected, donor):
    from tests.support.api import seed_donation

    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000)
    donation = seed_donation(connected, donor, amount_cents=25000)
    done = services.checkout_link_complete(link_id=link.id, donation=donation)
    assert done.status == LinkStatus.COMPLETED and done.donation_id == donation.id and done.completed_at
    assert services.checkout_link_complete(link_id=link.id, donation=donation).completed_at == done.completed_at
    second = seed_donation(connected, donor, amount_cents=25000)
    with pytest.raises(Conflict):
        services.checkout_link_complete(link_id=link.id, donation=second)
    assert Event.objects.filter(organisation=connected, type="checkout_link.completed").count() == 1
    with pytest.raises(Conflict):  # a paid link cannot be cancelled
        services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=link.id)


@pytest.mark.django_db
def test_suggest_description(org):
    jane = make_donor(org, first_name="Jane", last_name="Smith", email="j@example.org")
    assert link_suggest_description(donor=jane, amount_cents=25000) == "$250 donation from Jane Smith"
    assert link_suggest_description(donor=jane, amount_cents=125050) == "$1,250.50 donation from Jane Smith"
    assert link_suggest_description(donor=jane, amount_cents=None) == "Donation from Jane Smith"


@pytest.mark.django_db
def test_a_merge_moves_the_duplicates_links(connected):
    """Merging donors keeps the duplicate's checkout links, now the survivor's (a CASCADE would delete them)."""
    from donations.services import donor_merge

    survivor = make_donor(connected, first_name="Jane", last_name="Smith", email="jane@example.org")
    duplicate = make_donor(connected, first_name="Jane", last_name="Smith", email="jane.smith@example.org")
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=duplicate.id, amount_cents=25000)
    donor_merge(organisation=connected, actor=ACTOR, survivor_id=survivor.id, duplicate_id=duplicate.id)
    link.refresh_from_db()
    assert link.donor_id == survivor.id and link.is_payable

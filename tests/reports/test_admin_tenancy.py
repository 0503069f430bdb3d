"""The admin as back office: a staff member of one organisation (with every
model permission Django has) sees only that organisation's records (and its
sandbox twin's) in every registered model's list, search, filter choices,
object pages, autocomplete, actions and exports. A superuser sees all."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from compliance import services as compliance
from compliance.models import ComplianceBreach, RegimeRule, RevenueCode
from donations import services
from donations.models import Campaign, Donation, Donor
from organisations.models import Membership
from organisations.services import api_key_create
from reports.models import ExportJob
from tests.reports.conftest import FY_END, FY_START, SYSTEM, D, parse_csv
from organisations.admin_tenancy import organisation_roles, tenant_path, unscoped_admins

pytestmark = pytest.mark.django_db
User = get_user_model()


def seed_every_model(organisation, tag: str) -> None:
    """At least one row of every registered tenant model for `organisation`,
    through the services where they exist."""
    live = organisation.live
    member = User.objects.create_user(username=f"member-{tag}", email=f"member-{tag}@example.org", password="pw")
    if not Membership.objects.filter(user=member, organisation=live).exists():
        Membership.objects.create(user=member, organisation=live, role="VIEWER")
    api_key_create(organisation=organisation, actor=SYSTEM, name=f"key {tag}", scope="READ")
    donors = [services.donor_create(organisation=organisation, actor=SYSTEM, first_name=f"Seed{tag}", last_name=f"Donor{n}",
                                    email=f"seed{n}-{tag}@example.org") for n in range(3)]
    campaign = services.campaign_create(organisation=organisation, actor=SYSTEM, name=f"Campaign {tag}")
    for donor in donors:
        services.donation_record(organisation=organisation, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                 amount_cents=1_800_000, donation_date=D(2025, 9, 1), payment_method="CASH",
                                 campaign_id=campaign.id, revenue_code=f"SEED-{tag}")
    services.donor_merge(organisation=organisation, actor=SYSTEM, survivor_id=donors[0].id, duplicate_id=donors[2].id)
    code = RevenueCode.objects.get(organisation=organisation, code_lower=f"seed-{tag}".lower())
    compliance.revenue_code_update(organisation=organisation, actor=SYSTEM, revenue_code_id=code.id, jurisdiction="ACT")
    compliance.election_period_create(organisation=organisation, actor=SYSTEM, election_type="FEDERAL_GENERAL",
                                      name=f"Election {tag}", writ_date=D(2025, 8, 1), polling_date=D(2025, 9, 1))
    ComplianceBreach.objects.create(
        organisation=organisation, donor=donors[0], rule=RegimeRule.objects.get(name="Federal FY 2025-26"),
        jurisdiction="FEDERAL", period_start=FY_START, period_end=FY_END, cap_cents=1, aggregate_cents=2, excess_cents=1,
        reason=f"breach {tag}")
    compliance.compliance_settings_get(organisation=organisation)
    ExportJob.objects.create(organisation=organisation, report="donations", format="xlsx", file_name=f"{organisation.slug}.xlsx")
    from webhooks import services as webhooks

    webhooks.webhook_endpoint_create(organisation=organisation, actor=SYSTEM, url="http://127.0.0.1:9/hook", enabled_events=["*"])
    services.donor_update(organisation=organisation, actor=SYSTEM, donor_id=donors[1].id, notes="an event for the endpoint")
    seed_payments(organisation, donors[0], tag)
    seed_receipts(organisation, tag)


def seed_receipts(organisation, tag: str) -> None:
    """A receipt of `organisation` (issued by staff: BATCH mode, so no after-commit task leaves the test)."""
    from receipts.services import receipt_issue, receipt_settings_save

    receipt_settings_save(organisation=organisation, actor=SYSTEM, legal_name=f"Seed {tag} Incorporated", mode="BATCH")
    gift = Donation.objects.filter(organisation=organisation, status="CONFIRMED").order_by("created_at", "id").first()
    receipt_issue(organisation=organisation, actor=SYSTEM, donation_id=gift.id)


def seed_payments(organisation, donor, tag: str) -> None:
    """A form, a checkout link, a card payment attempt and a payout of `organisation`
    (the payment and payout rows as Stripe's events leave them: no Stripe call here)."""
    from engage import services as engage
    from organisations.services import organisation_stripe_connect
    from payments.models import Payment, Payout

    organisation_stripe_connect(organisation=organisation, actor=SYSTEM, account_id=f"acct_seed{tag}{organisation.id[-6:]}")
    form = engage.form_create(organisation=organisation, actor=SYSTEM, name=f"Form {tag}", slug=f"seed-{tag}-{organisation.id[-8:]}",
                              title="Give", suggested_amounts_cents=[2_500])
    engage.checkout_link_create(organisation=organisation, actor=SYSTEM, donor_id=donor.id, amount_cents=4_200)
    Payment.objects.create(organisation=organisation, kind="FORM", source="STRIPE", form=form, attempt_key=f"seed-{tag}-attempt",
                           amount_cents=2_500, currency="AUD", donor_details={"email": donor.email})
    Payout.objects.create(organisation=organisation, payout_id=f"po_seed{tag}{organisation.id[-6:]}", amount_cents=2_400,
                          currency="AUD", arrival_date=D(2025, 9, 5), status="paid")


def seed_recommendations(organisation, recipient, tag: str) -> None:
    """Passphrase, recipient link, recommendation set, split gift and introduction of `organisation`."""
    from recommendations.services.introductions import introduction_create
    from recommendations.services.links import distribution_passphrase_generate, recipient_link_exchange
    from recommendations.services.sets import recommendation_set_create
    from recommendations.services.splits import recommendation_split_record

    distribution_passphrase_generate(organisation=organisation, actor=SYSTEM)
    phrase = distribution_passphrase_generate(organisation=recipient, actor=SYSTEM)
    link = recipient_link_exchange(organisation=organisation, actor=SYSTEM, passphrase=phrase.plaintext, label=f"Link {tag}")
    chosen = recommendation_set_create(organisation=organisation, actor=SYSTEM, name=f"Set {tag}",
                                       allocations=[{"recipient_org_account_link_id": link.id, "amount_cents": 5000}])
    recommendation_split_record(organisation=organisation, actor=SYSTEM, recommendation_set_id=chosen.id, donation_date=D(2025, 9, 2),
                                donor={"first_name": "Split", "last_name": tag, "email": f"split-{tag}@example.org",
                                       "address_line1": "1 Split St", "suburb": "Carlton", "state": "VIC", "postcode": "3053"})
    introduction_create(organisation=organisation, actor=SYSTEM, invitee_email=f"invitee-{tag}@example.org")


@pytest.fixture(scope="module")
def world(books, django_db_blocker):
    from tests.conftest import make_org

    with django_db_blocker.unblock():
        recipient = make_org("Recipient")
        for organisation, tag in ((books.org, "a"), (books.other_org, "b"), (books.sandbox, "s")):
            seed_every_model(organisation, tag)
            seed_recommendations(organisation, recipient.sandbox if organisation.is_sandbox else recipient, tag)
        staff = User.objects.create_user(username="finance", email="finance@acme.example", password="pw", is_staff=True)
        staff.user_permissions.set(Permission.objects.all())
        Membership.objects.create(user=staff, organisation=books.org, role="ADMIN")
        root = User.objects.create_superuser(username="root", email="root@example.org", password="pw")
    return {"books": books, "staff": staff, "root": root}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def tenant_admins():
    return [(model, model_admin) for model, model_admin in admin.site._registry.items() if tenant_path(model) is not None]


def foreign_rows(model, books):
    """Rows of `model` that belong to neither Acme nor its sandbox."""
    path = tenant_path(model)
    mine = {books.org.id, books.sandbox.id}
    queryset = model._default_manager.all()
    if path == "":
        return queryset.exclude(pk__in=mine)
    if path.startswith("memberships"):
        return queryset.exclude(memberships__organisation__in=mine).filter(memberships__isnull=False).distinct()
    return queryset.exclude(**{f"{path}__in": mine})


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_every_registered_admin_is_scoped_or_declared_global():
    assert unscoped_admins() == []


def test_the_safety_net_scopes_an_admin_that_forgot_the_mixin(world):
    from django.contrib.admin import AdminSite

    from organisations.admin_tenancy import TenantAdminMixin, enforce_admin_tenancy

    site = AdminSite(name="scratch")

    class Forgetful(admin.ModelAdmin):
        pass

    site.register(Donor, Forgetful)
    site.register(RegimeRule, type("Global", (admin.ModelAdmin,), {"tenant_global": "the law"}))
    assert unscoped_admins(site) == ["donations.Donor (tests.reports.test_admin_tenancy.Forgetful)"]
    assert enforce_admin_tenancy(site) == ["donations.Donor (tests.reports.test_admin_tenancy.Forgetful)"]
    assert isinstance(site._registry[Donor], TenantAdminMixin) and isinstance(site._registry[Donor], Forgetful)
    assert unscoped_admins(site) == []


def test_roles_cover_the_sandbox_twin(world, rf):
    books = world["books"]
    request = rf.get("/admin/")
    request.user = world["staff"]
    assert organisation_roles(request) == {books.org.id: "ADMIN", books.sandbox.id: "ADMIN"}


@pytest.mark.parametrize("model", [m for m, _ in tenant_admins()], ids=lambda m: m._meta.label)
def test_staff_member_sees_only_their_organisations(world, model):
    books, staff = world["books"], world["staff"]
    foreign = foreign_rows(model, books)
    if model is User:
        foreign = foreign.exclude(pk=staff.pk)
    assert foreign.exists(), f"seed a row of {model._meta.label} in another organisation"
    other = foreign.first()
    client = client_for(staff)
    # The list: only Acme's (and its sandbox's) rows, and nothing of the other organisation on the page.
    response = client.get(changelist_url(model))
    assert response.status_code == 200, response.status_code
    shown = set(response.context["cl"].queryset.values_list("pk", flat=True))
    assert shown, f"{model._meta.label}: the staff member should see their own rows"
    assert not shown & set(foreign.values_list("pk", flat=True))
    html = response.content.decode()
    assert books.other_org.name not in html and books.other_org.slug not in html
    change = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[other.pk])
    assert change not in html
    if isinstance(other.pk, str):
        assert other.pk not in html
    # A search for the other organisation's row finds nothing of it.
    model_admin = admin.site._registry[model]
    if model_admin.get_search_fields(None):
        response = client.get(changelist_url(model), {"q": str(other.pk)})
        assert response.status_code == 200
        assert other.pk not in set(response.context["cl"].queryset.values_list("pk", flat=True))
    # Its page behaves as a missing object: a redirect to the admin index, never its data.
    response = client.get(change)
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    # A filter naming the other organisation yields nothing of it.
    if tenant_path(model) == "organisation":
        response = client.get(changelist_url(model), {"organisation__id__exact": books.other_org.id})
        if response.status_code == 200:
            assert not response.context["cl"].queryset.exists()
    # The superuser sees it.
    response = client_for(world["root"]).get(change)
    assert response.status_code == 200


def test_regime_rules_are_global_and_read_only_for_staff(world):
    client = client_for(world["staff"])
    response = client.get(changelist_url(RegimeRule))
    assert response.status_code == 200
    assert response.context["cl"].queryset.count() == RegimeRule.objects.count()
    rule = RegimeRule.objects.first()
    response = client.post(reverse("admin:compliance_regimerule_change", args=[rule.pk]), {"name": "Changed"})
    assert response.status_code == 403


def test_groups_are_superuser_only(world):
    Group.objects.create(name="finance")
    assert client_for(world["staff"]).get(changelist_url(Group)).status_code == 403
    assert client_for(world["root"]).get(changelist_url(Group)).status_code == 200


def test_staff_without_membership_sees_nothing(world):
    outsider = User.objects.create_user(username="outsider", password="pw", is_staff=True)
    outsider.user_permissions.set(Permission.objects.all())
    client = client_for(outsider)
    assert client.get(changelist_url(Donation)).status_code == 403
    index = client.get(reverse("admin:index"))
    listed = [m["object_name"] for app in index.context["app_list"] for m in app["models"]]
    assert index.status_code == 200 and listed == ["RegimeRule"]  # the law's numbers only: the same for everyone


def test_viewer_may_view_but_not_change(world):
    books = world["books"]
    viewer = User.objects.create_user(username="viewer", password="pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=viewer, organisation=books.org, role="VIEWER")
    donor = Donor.objects.filter(organisation=books.org).first()
    client = client_for(viewer)
    url = reverse("admin:donations_donor_change", args=[donor.pk])
    response = client.get(url)
    assert response.status_code == 200 and not response.context["has_change_permission"]
    assert client.post(url, {"first_name": "X"}).status_code == 403
    assert client.get(reverse("admin:donations_donor_add")).status_code == 403


def test_filter_and_form_choices_are_scoped(world):
    books = world["books"]
    client = client_for(world["staff"])
    response = client.get(changelist_url(Donation))
    organisation_filter = next(f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "organisation")
    assert {str(pk) for pk, _ in organisation_filter.lookup_choices} == {books.org.id, books.sandbox.id}
    campaign_filter = next(f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == "campaign")
    allowed = {str(pk) for pk in Campaign.objects.filter(organisation__in=[books.org, books.sandbox]).values_list("pk", flat=True)}
    offered = {str(pk) for pk, _ in campaign_filter.lookup_choices}
    assert offered and offered <= allowed
    revenue_codes = dict(next(f for f in response.context["cl"].filter_specs if getattr(f, "parameter_name", "") == "revenue_code").lookup_choices)
    assert "seed-b" not in revenue_codes and "seed-a" in revenue_codes
    # The add form offers only the member's organisations.
    response = client.get(reverse("admin:donations_donor_add"))
    choices = {str(pk) for pk, _ in response.context["adminform"].form.fields["organisation"].choices if pk}
    assert choices == {books.org.id, books.sandbox.id}


def test_autocomplete_is_scoped(world):
    client = client_for(world["staff"])
    response = client.get(reverse("admin:autocomplete"), {
        "app_label": "donations", "model_name": "donation", "field_name": "donor", "term": "Seed"})
    assert response.status_code == 200
    names = [r["text"] for r in response.json()["results"]]
    assert names and all("Seeda" in n or "Seeds" in n for n in names), names


def test_adding_a_gift_for_another_organisations_donor_is_refused(world):
    books = world["books"]
    client = client_for(world["staff"])
    foreign_donor = Donor.objects.filter(organisation=books.other_org).first()
    before = Donation.objects.count()
    response = client.post(reverse("admin:donations_donation_add"), {
        "organisation": books.org.id, "donor": foreign_donor.id, "donation_type": "MONETARY", "amount_cents": 100,
        "donation_date": "2025-09-01", "payment_method": "CASH"})
    assert response.status_code == 200  # the form again, with an error
    assert "donor" in response.context["adminform"].form.errors
    assert str(foreign_donor) not in response.content.decode()
    assert Donation.objects.count() == before


def _action(client, model, action, ids, select_across=False, **filters):
    data = {"action": action, "_selected_action": ids}
    if select_across:
        data["select_across"] = "1"
    return client.post(changelist_url(model) + ("?" + "&".join(f"{k}={v}" for k, v in filters.items()) if filters else ""), data)


def test_export_action_exports_only_the_members_rows(world):
    books = world["books"]
    client = client_for(world["staff"])
    mine = Donation.objects.filter(organisation=books.org).values_list("pk", flat=True)
    theirs = Donation.objects.filter(organisation=books.other_org).values_list("pk", flat=True)
    # Selecting the other organisation's rows selects nothing.
    response = _action(client, Donation, "export_donations_csv", list(theirs))
    assert response.status_code == 302 and "attachment" not in response.get("Content-Disposition", "")
    # "Select all" over a filtered list: exactly the list's rows, one organisation.
    response = _action(client, Donation, "export_donations_csv", [mine[0]], select_across=True,
                       organisation__id__exact=books.org.id, payment_method__exact="CHEQUE")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Disposition"].startswith(f'attachment; filename="{books.org.slug}_donations_')
    _, rows = parse_csv(b"".join(response.streaming_content))
    expected = set(Donation.objects.filter(organisation=books.org, payment_method="CHEQUE").values_list("pk", flat=True))
    assert {r["donation_id"] for r in rows} == expected and expected
    assert not {r["donation_id"] for r in rows} & set(theirs)
    # Rows of the live organisation and its sandbox together: refused, one organisation per file.
    sandbox_row = Donation.objects.filter(organisation=books.sandbox).values_list("pk", flat=True)[0]
    response = _action(client, Donation, "export_donations_csv", [mine[0], sandbox_row])
    assert response.status_code == 302
    assert Donation.objects.filter(pk=sandbox_row).exists()


@pytest.mark.parametrize("model, action", [
    (Donor, "export_donations_xlsx"), (Donation, "export_in_kind_register_csv"), (Donation, "export_reconciliation_csv"),
    ("campaign", "export_campaign_summary_csv"), ("obligation", "export_disclosure_return_csv"),
])
def test_every_export_action_works_for_the_member(world, model, action):
    from compliance.models import DisclosureObligation

    books = world["books"]
    model = {"campaign": Campaign, "obligation": DisclosureObligation}.get(model, model)
    queryset = model.objects.filter(organisation=books.org)
    if model is DisclosureObligation:
        queryset = queryset.filter(jurisdiction="FEDERAL", period_start=FY_START)
    ids = list(queryset.values_list("pk", flat=True))
    assert ids
    response = _action(client_for(world["staff"]), model, action, ids)
    assert response.status_code == 200, [str(m) for m in response.wsgi_request._messages] if response.status_code == 302 else response
    assert response["Content-Disposition"].startswith(f'attachment; filename="{books.org.slug}_')
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body


def test_admin_reports_page_is_scoped(world):
    books = world["books"]
    client = client_for(world["staff"])
    url = reverse("admin:reports_run")
    response = client.get(url)
    assert response.status_code == 200
    assert {str(o.pk) for o in response.context["form"].fields["organisation"].queryset} == {books.org.id, books.sandbox.id}
    response = client.post(url, {"organisation": books.other_org.id, "report": "donations", "format": "csv"})
    assert response.status_code == 400
    response = client.post(url, {"organisation": books.org.id, "report": "donations", "format": "csv",
                                 "date_from": "2025-07-01", "date_to": "2026-06-30"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{books.org.slug}_donations_2025-07-01_2026-06-30.csv"'
    _, rows = parse_csv(b"".join(response.streaming_content))
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range()} | set(
        Donation.objects.filter(organisation=books.org, donation_date__range=(FY_START, FY_END)).values_list("pk", flat=True))


def test_export_jobs_of_another_organisation_are_invisible(world):
    books = world["books"]
    client = client_for(world["staff"])
    job = ExportJob.objects.filter(organisation=books.other_org).first()
    assert client.get(reverse("admin:reports_exportjob_status", args=[job.pk])).status_code == 404
    assert client.get(reverse("admin:reports_exportjob_download", args=[job.pk])).status_code == 404


def test_user_list_shows_only_people_sharing_an_organisation(world):
    client = client_for(world["staff"])
    response = client.get(changelist_url(User))
    usernames = set(response.context["cl"].queryset.values_list("username", flat=True))
    assert {"member-a", "member-s", "finance"} <= usernames  # member-s joined Acme for its sandbox
    assert "member-b" not in usernames and "root" not in usernames
    # Seeing is not changing: users are changed by superusers only.
    member = User.objects.get(username="member-a")
    assert client.post(reverse("admin:auth_user_change", args=[member.pk]), {"is_superuser": "on"}).status_code == 403


def test_void_selected_goes_through_the_service_and_only_for_the_members_rows(world):
    from organisations.models import AuditEntry

    books = world["books"]
    client = client_for(world["staff"])
    mine = Donation.objects.filter(organisation=books.org, status="CONFIRMED").order_by("id").first()
    theirs = Donation.objects.filter(organisation=books.other_org, status="CONFIRMED").first()
    confirm = _action(client, Donation, "void_selected", [mine.pk, theirs.pk])
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert mine.pk in page and theirs.pk not in page
    response = client.post(changelist_url(Donation), {"action": "void_selected", "_selected_action": [mine.pk, theirs.pk],
                                                      "apply": "1", "reason": "keyed twice"})
    assert response.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, mine.void_reason) == ("VOIDED", "keyed twice")
    assert theirs.status == "CONFIRMED"
    assert AuditEntry.objects.filter(organisation=books.org, action="donation.voided", object_id=mine.pk).exists()
    # Without a reason nothing happens: the form asks again.
    other = Donation.objects.filter(organisation=books.org, status="CONFIRMED").order_by("id").first()
    again = client.post(changelist_url(Donation), {"action": "void_selected", "_selected_action": [other.pk], "apply": "1", "reason": ""})
    assert again.status_code == 200
    other.refresh_from_db()
    assert other.status == "CONFIRMED"

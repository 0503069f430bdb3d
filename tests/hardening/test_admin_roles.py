"""The admin obeys Together's roles, for every registered model and action
(issue 13, defect 4): a VIEWER reads, an EDITOR edits records, only an ADMIN
changes memberships, keys, endpoints, passphrases and settings; an object is
judged by the role in ITS organisation; nobody edits their own membership; a
staff user who is a member of nothing sees nothing of any organisation; and the
demo ADMIN opens /admin/ without any Django permission rows.

The table below is the rule written out independently of the code: every model
registered in the admin must have a row (its kind, the operations its admin
offers at all, its actions and the operation each needs), so a newly registered
model or action without a classification fails `test_every_registered_model_and_action_has_a_row`.
Every row is exercised through the real test client (force_login, real POSTs)
as a VIEWER, an EDITOR and an ADMIN of the organisation, an ADMIN of another
organisation who is only a VIEWER of this one, and a staff user who is a member
of nothing. The ADMIN holds no Django permission (the role is enough); the
others hold every one (the role still caps them)."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from organisations.models import Membership
from together.actors import Actor

pytestmark = pytest.mark.django_db
User = get_user_model()
SYSTEM = Actor.system("tests")
D = dt.date

RANK = {"VIEWER": 1, "EDITOR": 2, "ADMIN": 3}

# The rule: the role each operation needs, by kind of object.
NEEDS = {
    "records": {"view": "VIEWER", "add": "EDITOR", "change": "EDITOR", "write": "EDITOR", "delete": "ADMIN"},
    "administration": {"view": "VIEWER", "add": "ADMIN", "change": "ADMIN", "write": "ADMIN", "delete": "ADMIN"},
}

def EXPORTS(*names) -> dict:  # upper case: it reads as a table entry
    return {f"export_{n}_{fmt}": "view" for n in names for fmt in ("csv", "xlsx")}

# label: (kind, operations the admin offers members beyond viewing, {action: operation it needs (None: never offered)})
TABLE = {
    "organisations.Organisation": ("administration", {"change"}, {"delete_selected": None}),
    "organisations.Membership": ("administration", {"change"}, {"delete_selected": None, "remove": "write"}),
    "organisations.ApiKey": ("administration", set(), {"delete_selected": None, "revoke": "write"}),
    "organisations.AuditEntry": ("records", set(), {"delete_selected": None}),
    "auth.User": ("administration", set(), {"delete_selected": None}),
    "donations.Donor": ("records", {"add", "change"}, {"delete_selected": None, **EXPORTS("donations")}),
    "donations.Donation": ("records", {"add", "change"}, {
        "delete_selected": None, "void_selected": "change", **EXPORTS("donations", "in_kind_register", "reconciliation")}),
    "donations.Campaign": ("records", {"add", "change"}, {"delete_selected": None, **EXPORTS("campaign_summary")}),
    "donations.DonorMerge": ("records", set(), {"delete_selected": None}),
    "compliance.RevenueCode": ("administration", set(), {"delete_selected": None}),
    "compliance.DisclosureObligation": ("records", set(), {"delete_selected": None, **EXPORTS("disclosure_return")}),
    "compliance.ComplianceBreach": ("records", set(), {"delete_selected": None}),
    "compliance.DonorAggregate": ("records", set(), {"delete_selected": None}),
    "compliance.ElectionPeriod": ("administration", {"add", "change", "delete"}, {"delete_selected": "delete"}),
    "compliance.ComplianceSettings": ("administration", set(), {"delete_selected": None}),
    "compliance.Recompute": ("records", set(), {"delete_selected": None}),
    "recommendations.DistributionPassphrase": ("administration", set(), {"delete_selected": None, "revoke": "write"}),
    "recommendations.RecipientOrgAccountLink": ("administration", set(), {"delete_selected": None, "deactivate": "write"}),
    "recommendations.Introduction": ("administration", set(), {"delete_selected": None, "revoke": "write"}),
    "recommendations.RecommendationSet": ("records", set(), {"delete_selected": None, "deactivate": "write"}),
    "recommendations.SplitGift": ("records", set(), {"delete_selected": None}),
    "webhooks.Event": ("administration", set(), {"delete_selected": None}),
    "webhooks.WebhookEndpoint": ("administration", set(), {"delete_selected": None, "disable": "write"}),
    "webhooks.WebhookDelivery": ("administration", set(), {"delete_selected": None, "retry": "write"}),
    "reports.ExportJob": ("records", {"delete"}, {"delete_selected": "delete"}),
    "engage.DonationForm": ("records", set(), {"delete_selected": None, "archive": "write"}),
    "engage.CheckoutLink": ("records", set(), {"delete_selected": None, "cancel": "write"}),
    "payments.Payment": ("records", set(), {"delete_selected": None}),
    "payments.Payout": ("records", set(), {"delete_selected": None}),
    "payments.StripeEvent": ("superuser", set(), {"delete_selected": None}),
    "receipts.Receipt": ("records", set(), {"delete_selected": None, "withdraw_selected": "write", "resend_selected": "write"}),
    # Not any organisation's: the law's numbers (every staff user reads, superusers edit) and groups (superusers only).
    "compliance.RegimeRule": ("global", set(), {"delete_selected": None}),
    "auth.Group": ("superuser", set(), {"delete_selected": None}),
}

# The acting users. Object-less checks (the list, the add form) count the best role anywhere;
# an object is judged by the role in the home organisation, which owns every target row.
ROLES = {
    #                   role on the home organisation's objects, best role anywhere
    "VIEWER": ("VIEWER", "VIEWER"),
    "EDITOR": ("EDITOR", "EDITOR"),
    "ADMIN": ("ADMIN", "ADMIN"),
    "ADMIN_ELSEWHERE": ("VIEWER", "ADMIN"),  # ADMIN of another organisation, VIEWER of this one
    "NON_MEMBER": (None, None),  # staff, member of nothing
}

HOSTILE_CHANGE = {  # what a change POST tries: raise a role, rename, repoint, disable
    "role": "ADMIN", "name": "Changed by the table", "first_name": "Changed", "slug": "changed-by-the-table",
    "is_superuser": "on", "is_staff": "on", "url": "https://changed.example/hook", "label": "Changed", "status": "DISABLED",
    "description": "Changed", "notes": "Changed", "polling_date": "2031-01-01", "writ_date": "2030-12-01",
}


def label_of(model) -> str:
    return model._meta.label


def expected(label: str, role: str, operation: str) -> bool:
    """Whether `role` may do `operation` ("list", "add", "change", "delete" or "action:<name>") on the home row of `label`."""
    kind, offered, actions = TABLE[label]
    on_object, anywhere = ROLES[role]
    if kind == "superuser":
        return False
    if kind == "global":
        return operation == "list"
    if operation == "list":
        need, held = "view", anywhere
    elif operation == "add":
        need, held = ("add" if "add" in offered else None), anywhere
    elif operation in ("change", "delete"):
        need, held = (operation if operation in offered else None), on_object
    else:
        need, held = actions[operation.removeprefix("action:")], on_object
    return need is not None and held is not None and RANK[held] >= RANK[NEEDS[kind][need]]


# --- the world: one row of every model in the home organisation -------------------------------

def _seed(organisation, recipient):
    from compliance import services as compliance
    from compliance.models import ComplianceBreach, RegimeRule, RevenueCode
    from donations import services as donations
    from organisations.services import api_key_create
    from recommendations.services.introductions import introduction_create
    from recommendations.services.links import distribution_passphrase_generate, recipient_link_exchange
    from recommendations.services.sets import recommendation_set_create
    from recommendations.services.splits import recommendation_split_record
    from reports.models import ExportJob
    from webhooks import services as webhooks

    tag = organisation.slug
    api_key_create(organisation=organisation, actor=SYSTEM, name=f"key {tag}", scope="READ")
    donors = [donations.donor_create(organisation=organisation, actor=SYSTEM, first_name="Table", last_name=f"Donor{n}",
                                     email=f"table{n}-{tag}@example.org") for n in range(3)]
    campaign = donations.campaign_create(organisation=organisation, actor=SYSTEM, name=f"Campaign {tag}")
    for donor in donors:
        donations.donation_record(organisation=organisation, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                  amount_cents=1_800_000, donation_date=D(2025, 9, 1), payment_method="CASH",
                                  campaign_id=campaign.id, revenue_code="TABLE")
    donations.donor_merge(organisation=organisation, actor=SYSTEM, survivor_id=donors[0].id, duplicate_id=donors[2].id)
    code = RevenueCode.objects.get(organisation=organisation, code_lower="table")
    compliance.revenue_code_update(organisation=organisation, actor=SYSTEM, revenue_code_id=code.id, jurisdiction="ACT")
    compliance.election_period_create(organisation=organisation, actor=SYSTEM, election_type="FEDERAL_GENERAL",
                                      name=f"Election {tag}", writ_date=D(2025, 8, 1), polling_date=D(2025, 9, 1))
    ComplianceBreach.objects.create(
        organisation=organisation, donor=donors[0], rule=RegimeRule.objects.get(name="Federal FY 2025-26"), jurisdiction="FEDERAL",
        period_start=D(2025, 7, 1), period_end=D(2026, 6, 30), cap_cents=1, aggregate_cents=2, excess_cents=1, reason="table")
    compliance.compliance_settings_get(organisation=organisation)
    ExportJob.objects.create(organisation=organisation, report="donations", format="csv", file_name=f"{tag}.csv")
    endpoint = webhooks.webhook_endpoint_create(organisation=organisation, actor=SYSTEM, url="https://hooks.example/table",
                                                enabled_events=["*"])
    endpoint_id = getattr(endpoint, "endpoint", endpoint).id
    webhooks.webhook_endpoint_test(organisation=organisation, actor=SYSTEM, endpoint_id=endpoint_id)
    distribution_passphrase_generate(organisation=organisation, actor=SYSTEM)
    phrase = distribution_passphrase_generate(organisation=recipient, actor=SYSTEM)
    link = recipient_link_exchange(organisation=organisation, actor=SYSTEM, passphrase=phrase.plaintext, label="Table link")
    chosen = recommendation_set_create(organisation=organisation, actor=SYSTEM, name="Table set",
                                       allocations=[{"recipient_org_account_link_id": link.id, "amount_cents": 5000}])
    recommendation_split_record(organisation=organisation, actor=SYSTEM, recommendation_set_id=chosen.id, donation_date=D(2025, 9, 2),
                                donor={"first_name": "Split", "last_name": "Table", "email": f"split-{tag}@example.org",
                                       "address_line1": "1 Split St", "suburb": "Carlton", "state": "VIC", "postcode": "3053"})
    introduction_create(organisation=organisation, actor=SYSTEM, invitee_email=f"invitee-{tag}@example.org")
    from engage.services import checkout_link_create, form_create
    from organisations.services import organisation_stripe_connect

    organisation_stripe_connect(organisation=organisation, actor=SYSTEM, account_id=f"acct_table{tag[-6:]}")
    form_create(organisation=organisation, actor=SYSTEM, name="Table form", slug=f"table-{tag}", title="Give",
                suggested_amounts_cents=[2500])
    checkout_link_create(organisation=organisation, actor=SYSTEM, donor_id=donors[0].id, amount_cents=5000)
    # Card payments are written by the Stripe flow (tests/payments); one row of each here.
    from payments.models import Payment, PaymentPart, Payout, StripeEvent

    payment = Payment.objects.create(organisation=organisation, kind="SPLIT", source="STRIPE", attempt_key=f"table-{tag}",
                                     recommendation_set_id=chosen.id, amount_cents=5000, donor_details={"email": "t@example.org"})
    PaymentPart.objects.create(organisation=organisation, payment=payment, position=0, recipient_organisation=recipient,
                               amount_cents=5000)
    Payout.objects.create(organisation=organisation, payout_id=f"po_table{tag[-6:]}", amount_cents=5000, status="paid")
    StripeEvent.objects.get_or_create(event_id=f"evt_table_{tag}", defaults={"type": "payout.paid"})
    # A receipt, issued by staff (BATCH mode: nothing is receipted on record).
    from donations.models import Donation
    from receipts.services import receipt_issue, receipt_settings_save

    receipt_settings_save(organisation=organisation, actor=SYSTEM, legal_name="Table Incorporated", mode="BATCH")
    gift = Donation.objects.for_organisation(organisation).filter(status="CONFIRMED").order_by("created_at", "id").first()
    receipt_issue(organisation=organisation, actor=SYSTEM, donation_id=gift.id)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Seeded once for the module inside an outer transaction that is rolled back
    at the end (each test runs in a savepoint of it), so nothing outlives the module."""
    from django.db import transaction

    from tests.conftest import make_org

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            home, elsewhere, recipient = make_org("Home"), make_org("Elsewhere"), make_org("Recipient")
            _seed(home, recipient)
            tag = home.slug
            users = {}
            for role in ROLES:
                users[role] = User.objects.create_user(username=f"{role.lower()}-{tag}", email=f"{role.lower()}-{tag}@example.org",
                                                       password="pw", is_staff=True)
            # Django's permissions neither grant nor widen anything: every user but the ADMIN holds all of them
            # (the role caps them), the ADMIN none (the role is enough).
            every_permission = list(Permission.objects.all())
            for role, user in users.items():
                if role != "ADMIN":
                    user.user_permissions.set(every_permission)
            for role in ("VIEWER", "EDITOR", "ADMIN"):
                Membership.objects.create(user=users[role], organisation=home, role=role)
            Membership.objects.create(user=users["ADMIN_ELSEWHERE"], organisation=home, role="VIEWER")
            Membership.objects.create(user=users["ADMIN_ELSEWHERE"], organisation=elsewhere, role="ADMIN")
            target = User.objects.create_user(username=f"target-{tag}", email=f"target-{tag}@example.org", password="pw")
            Membership.objects.create(user=target, organisation=home, role="VIEWER")
            group = Group.objects.create(name=f"group-{tag}")
            root = User.objects.create_superuser(username=f"root-{tag}", email=f"root-{tag}@example.org", password="pw")
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield {"home": home, "elsewhere": elsewhere, "users": users, "target": target, "group": group, "root": root}
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def target_row(model, world):
    """The home organisation's row of `model` that each operation is tried on."""
    from compliance.models import RegimeRule

    home = world["home"]
    label = label_of(model)
    if label == "organisations.Organisation":
        return home
    if label == "organisations.Membership":
        return Membership.objects.get(user=world["target"], organisation=home)
    if label == "auth.User":
        return world["target"]
    if label == "auth.Group":
        return world["group"]
    if model is RegimeRule:
        return RegimeRule.objects.order_by("pk").first()
    if label == "payments.StripeEvent":  # the platform's, no organisation's
        return model._default_manager.order_by("-received_at").first()
    queryset = model._default_manager.filter(organisation=home)
    narrow = {
        "organisations.ApiKey": {"revoked_at__isnull": True},
        "donations.Donation": {"status": "CONFIRMED"},
        "recommendations.DistributionPassphrase": {"ended_at__isnull": True},
        "recommendations.RecipientOrgAccountLink": {"is_active": True},
        "recommendations.RecommendationSet": {"is_active": True},
        "recommendations.Introduction": {"status": "pending"},
        "webhooks.WebhookEndpoint": {"status": "ENABLED"},
        "compliance.DisclosureObligation": {"jurisdiction": "FEDERAL"},
    }.get(label, {})
    row = queryset.filter(**narrow).order_by("pk").first()
    assert row is not None, f"seed a row of {label} in the home organisation"
    return row


def snapshot(model, pk):
    return model._default_manager.filter(pk=pk).values().first()


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- the table ---------------------------------------------------------------------------------

def test_every_registered_model_and_action_has_a_row():
    """A newly registered model, or a new action, fails here until the table classifies it."""
    from organisations.admin_tenancy import OBJECT_KINDS, TenantAdminMixin

    registered = {label_of(m): a for m, a in admin.site._registry.items()}
    assert set(registered) == set(TABLE), "classify every registered model in TABLE"
    for label, model_admin in registered.items():
        kind, _, actions = TABLE[label]
        if isinstance(model_admin, TenantAdminMixin):
            assert model_admin.object_kind in OBJECT_KINDS and model_admin.object_kind == kind, label
        else:
            assert kind in ("global", "superuser") and getattr(model_admin, "tenant_global", None), label
        declared = {name for _, name, _ in model_admin._get_base_actions()}
        assert declared == set(actions), f"{label}: classify its actions {sorted(declared ^ set(actions))}"
        for func, name, _ in model_admin._get_base_actions():
            assert getattr(func, "allowed_permissions", None), f"{label}.{name} declares no allowed_permissions"


def _cases():
    for model in admin.site._registry:
        label = label_of(model)
        if label not in TABLE:
            continue  # reported by the test above
        operations = ["list", "add", "change", "delete"] + [f"action:{name}" for name in TABLE[label][2]]
        for role in ROLES:
            for operation in operations:
                yield pytest.param(model, role, operation, id=f"{label}-{role}-{operation}")


@pytest.mark.parametrize("model, role, operation", list(_cases()))
def test_role_table(world, model, role, operation):
    label = label_of(model)
    allowed = expected(label, role, operation)
    client = client_for(world["users"][role])
    row = target_row(model, world)
    before = snapshot(model, row.pk)
    if operation == "list":
        response = client.get(url(model, "changelist"))
        assert response.status_code == (200 if allowed else 403)
        if allowed and TABLE[label][0] not in ("global", "superuser"):
            assert row.pk in set(response.context["cl"].queryset.values_list("pk", flat=True))
        return
    if operation == "add":
        response = client.get(url(model, "add"))
        assert response.status_code == (200 if allowed else 403)
        return
    if operation == "change":
        response = client.post(url(model, "change", row.pk), HOSTILE_CHANGE)
        if allowed:
            assert response.status_code in (200, 302)  # saved, or the form again with its errors
        else:
            assert response.status_code == 403
            assert snapshot(model, row.pk) == before
        return
    if operation == "delete":
        response = client.post(url(model, "delete", row.pk), {"post": "yes"})
        if allowed:
            assert response.status_code == 302 and snapshot(model, row.pk) is None
        else:
            assert response.status_code == 403
            assert snapshot(model, row.pk) == before
        return
    # An action, on the home row, with whatever it asks for (a reason, a confirmation) already given.
    name = operation.removeprefix("action:")
    from organisations.models import AuditEntry

    audits = AuditEntry.objects.count()
    response = client.post(url(model, "changelist"), {
        "action": name, "index": "0", "_selected_action": [row.pk], "post": "yes", "apply": "1", "reason": "table test"})
    after = snapshot(model, row.pk)
    exported = "attachment" in response.get("Content-Disposition", "")
    if allowed:
        assert exported or after != before, f"{name} had no effect: {response.status_code}"
    else:
        assert response.status_code in (200, 302, 403) and not exported  # the list again, back to it, or refused
        assert after == before
        assert AuditEntry.objects.count() == audits


# --- the named regressions ---------------------------------------------------------------------

def _membership_change(client, membership, role):
    return client.post(url(Membership, "change", membership.pk), {"role": role})


def test_editor_cannot_make_their_own_membership_admin(world):
    editor = world["users"]["EDITOR"]
    own = Membership.objects.get(user=editor, organisation=world["home"])
    response = _membership_change(client_for(editor), own, "ADMIN")
    assert response.status_code == 403
    own.refresh_from_db()
    assert own.role == "EDITOR"
    assert not Membership.objects.filter(user=editor, role="ADMIN").exists()


def test_nobody_edits_or_removes_their_own_membership_not_even_an_admin(world):
    from organisations.models import AuditEntry

    admin_user = world["users"]["ADMIN"]
    own = Membership.objects.get(user=admin_user, organisation=world["home"])
    client = client_for(admin_user)
    assert client.get(url(Membership, "change", own.pk)).context["has_change_permission"] is False
    assert _membership_change(client, own, "VIEWER").status_code == 403
    audits = AuditEntry.objects.count()
    client.post(url(Membership, "changelist"), {"action": "remove", "index": "0", "_selected_action": [own.pk]})
    own.refresh_from_db()
    assert own.role == "ADMIN" and AuditEntry.objects.count() == audits


def test_admin_changes_another_members_role_through_the_service(world):
    from organisations.models import AuditEntry

    target = Membership.objects.get(user=world["target"], organisation=world["home"])
    response = _membership_change(client_for(world["users"]["ADMIN"]), target, "EDITOR")
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == "EDITOR"
    assert AuditEntry.objects.filter(organisation=world["home"], action="membership.updated", object_id=str(target.pk)).exists()


def test_an_admin_elsewhere_is_a_viewer_here(world):
    """ADMIN of another organisation, VIEWER of this one: this one's memberships stay as they are."""
    target = Membership.objects.get(user=world["target"], organisation=world["home"])
    client = client_for(world["users"]["ADMIN_ELSEWHERE"])
    assert _membership_change(client, target, "ADMIN").status_code == 403
    client.post(url(Membership, "changelist"), {"action": "remove", "index": "0", "_selected_action": [target.pk]})
    target.refresh_from_db()
    assert target.role == "VIEWER"


def test_viewer_cannot_revoke_the_distribution_passphrase(world):
    from recommendations.models import DistributionPassphrase

    passphrase = DistributionPassphrase.objects.get(organisation=world["home"], ended_at__isnull=True)
    client = client_for(world["users"]["VIEWER"])
    page = client.get(url(DistributionPassphrase, "changelist"))
    form = page.context["action_form"]  # None when the list offers no action at all
    assert page.status_code == 200 and (form is None or "revoke" not in dict(form.fields["action"].choices))
    response = client.post(url(DistributionPassphrase, "changelist"),
                           {"action": "revoke", "index": "0", "_selected_action": [passphrase.pk]})
    assert response.status_code in (200, 302)
    passphrase.refresh_from_db()
    assert passphrase.ended_at is None
    # The ADMIN may.
    client_for(world["users"]["ADMIN"]).post(url(DistributionPassphrase, "changelist"),
                                              {"action": "revoke", "index": "0", "_selected_action": [passphrase.pk]})
    passphrase.refresh_from_db()
    assert passphrase.ended_at is not None


def test_viewer_and_editor_cannot_disable_a_webhook_endpoint(world):
    from webhooks.models import WebhookEndpoint

    endpoint = WebhookEndpoint.objects.get(organisation=world["home"])
    for role in ("VIEWER", "EDITOR"):
        response = client_for(world["users"][role]).post(url(WebhookEndpoint, "changelist"),
                                                         {"action": "disable", "index": "0", "_selected_action": [endpoint.pk]})
        assert response.status_code in (200, 302)  # the list again (no action offered) or back to it
        endpoint.refresh_from_db()
        assert endpoint.status == "ENABLED", role


def test_django_permissions_grant_nothing_without_a_role(world):
    from donations.models import Donor

    outsider = world["users"]["NON_MEMBER"]
    assert outsider.has_perm("donations.view_donor")  # every Django permission, and no role
    client = client_for(outsider)
    assert client.get(url(Donor, "changelist")).status_code == 403
    assert client.get(url(Membership, "changelist")).status_code == 403


def test_superuser_opens_every_list(world):
    client = client_for(world["root"])
    for model in admin.site._registry:
        assert client.get(url(model, "changelist")).status_code == 200, label_of(model)


def test_editor_adds_a_donor_a_viewer_cannot(world):
    from donations.models import Donor

    home = world["home"]
    data = {"organisation": home.id, "donor_type": "INDIVIDUAL", "first_name": "Added", "last_name": "ByTable", "country": "AU"}
    before = Donor.objects.filter(organisation=home).count()
    assert client_for(world["users"]["VIEWER"]).post(url(Donor, "add"), data).status_code == 403
    assert Donor.objects.filter(organisation=home).count() == before
    response = client_for(world["users"]["EDITOR"]).post(url(Donor, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert Donor.objects.filter(organisation=home, last_name="ByTable").exists()
    # An ADMIN elsewhere is offered only that organisation for a new record, not this one.
    page = client_for(world["users"]["ADMIN_ELSEWHERE"]).get(url(Donor, "add"))
    offered = {str(pk) for pk, _ in page.context["adminform"].form.fields["organisation"].choices if pk}
    assert home.id not in offered and world["elsewhere"].id in offered


def test_demo_admin_opens_the_admin(db):
    """The demo's core steps (organisation, users, keys: what `load_demo` runs before any demo data) make an
    ADMIN who opens /admin/ with no Django permission row; the demo data itself is not needed here."""
    from organisations.demo import DEMO_USERS
    from together.demo import DEMO_STEPS, DemoContext, discover_steps

    discover_steps()
    ctx = DemoContext(stdout=io.StringIO())
    for step in sorted(DEMO_STEPS, key=lambda s: (s.order, s.name)):
        if step.order < 100:
            step.run(ctx)
    assert not ctx.users["ADMIN"].user_permissions.exists() and not ctx.users["ADMIN"].groups.exists()
    email, password, _ = next(u for u in DEMO_USERS if u[2] == "ADMIN")
    client = Client()
    assert client.login(username=email, password=password)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "You don’t have permission" not in response.content.decode()
    listed = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"Donor", "Donation", "Campaign", "Membership", "ApiKey", "WebhookEndpoint", "DistributionPassphrase"} <= listed
    assert client.get(url(Membership, "changelist")).status_code == 200


def test_an_action_on_two_organisations_touches_only_the_one_the_role_allows(world):
    """ADMIN of Elsewhere, VIEWER of Home, selects both organisations' passphrases: only Elsewhere's is revoked."""
    from recommendations.models import DistributionPassphrase
    from recommendations.services.links import distribution_passphrase_generate

    distribution_passphrase_generate(organisation=world["elsewhere"], actor=SYSTEM)
    theirs = DistributionPassphrase.objects.get(organisation=world["elsewhere"], ended_at__isnull=True)
    home = DistributionPassphrase.objects.get(organisation=world["home"], ended_at__isnull=True)
    response = client_for(world["users"]["ADMIN_ELSEWHERE"]).post(
        url(DistributionPassphrase, "changelist"), {"action": "revoke", "index": "0", "_selected_action": [home.pk, theirs.pk]}, follow=True)
    assert "1 selected row(s) were left alone" in response.content.decode()
    theirs.refresh_from_db()
    home.refresh_from_db()
    assert theirs.ended_at is not None and home.ended_at is None


def test_an_admin_without_a_kind_fails_closed(world, rf):
    """An admin that forgot object_kind (or one the safety net scoped) is "administration": only ADMINs change."""
    from django.contrib.admin import AdminSite

    from donations.models import Donor
    from organisations.admin_tenancy import TenantAdminMixin

    class Unclassified(TenantAdminMixin, admin.ModelAdmin):
        pass

    model_admin = Unclassified(Donor, AdminSite(name="scratch"))
    donor = Donor.objects.filter(organisation=world["home"]).first()
    for role, may_change in (("VIEWER", False), ("EDITOR", False), ("ADMIN", True)):
        request = rf.get("/admin/")
        request.user = world["users"][role]
        assert model_admin.has_view_permission(request, donor)
        assert model_admin.has_change_permission(request, donor) is may_change, role

"""Records for the dashboard tests, made through the services (the path every
page takes), and the URL conf walked to find the dashboard's routes."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

from compliance import services as compliance
from donations import services
from organisations.session import DashboardMixin
from together.actors import Actor

SYSTEM = Actor.system("dashboard tests")
FED_CAP = 5_000_000  # federal: $50,000 per donor per recipient per calendar year, from 2027
GIFT_DAY = dt.date(2027, 3, 15)


@dataclass
class World:
    """One organisation's records, each carrying a marker no other organisation's page may show."""

    organisation: object
    marker: str
    donor: object = None
    campaign: object = None
    donation: object = None
    batch: object = None
    revenue_code: object = None
    recommendation_set: object = None
    export_job: object = None
    import_job: object = None
    form: object = None
    checkout_link: object = None
    plan: object = None
    receipt: object = None
    receipt_run: object = None
    custom_field: object = None
    markers: list[str] = field(default_factory=list)


def build_world(organisation, label: str) -> World:
    from tests.conftest import make_org

    marker = f"{label}{secrets.token_hex(3)}"
    w = World(organisation=organisation, marker=marker)
    w.donor = services.donor_create(organisation=organisation, actor=SYSTEM, first_name="Quill", last_name=f"Donor{marker}",
                                    email=f"quill-{marker.lower()}@example.org", postcode="2000")
    w.campaign = services.campaign_create(organisation=organisation, actor=SYSTEM, name=f"Campaign{marker}")
    from donations.custom_fields import custom_field_create

    w.custom_field = custom_field_create(organisation=organisation, actor=SYSTEM, applies_to="DONATION", key="region",
                                         label=f"Region{marker}", field_type="TEXT")
    w.revenue_code = compliance.revenue_code_create(organisation=organisation, actor=SYSTEM, code=f"CODE-{marker}", jurisdiction="FEDERAL")
    w.donation = services.donation_record(organisation=organisation, actor=SYSTEM, donor_id=w.donor.id, amount_cents=123_456,
                                          donation_date=GIFT_DAY, donation_type="MONETARY", payment_method="CHEQUE",
                                          reference=f"CHQ{marker}", revenue_code=w.revenue_code.code, campaign_id=w.campaign.id)
    w.batch = services.batch_save_draft(organisation=organisation, actor=SYSTEM, reference=f"DEP{marker}", deposit_date=GIFT_DAY,
                                        control_count=1, control_total_cents=5_000,
                                        rows=[{"donor_id": w.donor.id, "amount_cents": 5_000}])
    try:
        from recommendations import services as rec

        recipient = make_org(f"Recipient{marker}")
        passphrase = rec.distribution_passphrase_generate(organisation=recipient, actor=SYSTEM).plaintext
        link = rec.recipient_link_exchange(organisation=organisation, actor=SYSTEM, passphrase=passphrase, label=f"Link{marker}")
        w.recommendation_set = rec.recommendation_set_create(
            organisation=organisation, actor=SYSTEM, name=f"Set{marker}",
            allocations=[{"recipient_org_account_link_id": link.id, "amount_cents": 2_500}])
    except ImportError:  # the recommendations app is optional to these tests
        pass
    try:
        from reports import services as reports

        spec = reports.report_spec(organisation=organisation, name="donations", data={})
        w.export_job = reports.export_job_run(job_id=reports.export_job_create(spec=spec, fmt="csv", actor=SYSTEM).id)
    except ImportError:  # the reports app is optional to these tests
        pass
    from django.core.files.uploadedfile import SimpleUploadedFile

    from imports import services as imports

    body = f"First name,Email,Amount,Date\nImp{marker},imp-{marker.lower()}@example.org,25,01/03/2025\n".encode()
    w.import_job = imports.import_create(organisation=organisation, actor=SYSTEM, file=SimpleUploadedFile("gifts.csv", body),
                                        file_name=f"Import{marker}.csv")
    imports.import_plan_run(import_id=w.import_job.id)
    from engage import services as engage
    from organisations.services import organisation_stripe_connect
    from payments import recurring

    organisation_stripe_connect(organisation=organisation, actor=SYSTEM, account_id=f"acct_{marker}")
    w.form = engage.form_create(organisation=organisation, actor=SYSTEM, name=f"Form{marker}", slug=f"form-{marker.lower()}",
                                title=f"Give to {marker}", suggested_amounts_cents=[2_500, 5_000])
    w.checkout_link = engage.checkout_link_create(organisation=organisation, actor=SYSTEM, donor_id=w.donor.id,
                                                  amount_cents=7_700, description=f"Link{marker}")
    w.plan = recurring.plan_create(organisation=organisation, actor=SYSTEM, donor_id=w.donor.id, amount_cents=2_000,
                                   frequency="MONTHLY", payment_method="MANUAL", start_date=GIFT_DAY)
    from receipts import services as receipts

    receipts.receipt_settings_save(organisation=organisation, actor=SYSTEM, legal_name=f"Legal{marker}", deductibility="NONE")
    w.receipt = receipts.receipt_issue(organisation=organisation, actor=SYSTEM, donation_id=w.donation.id)
    w.receipt_run = receipts.receipt_run_start(organisation=organisation, actor=SYSTEM, date_from=GIFT_DAY, date_to=GIFT_DAY)
    w.markers = [marker, organisation.name]
    return w


# --- the URL conf ---------------------------------------------------------------------------

# Not staff pages: the API, admin and developer docs, public pages, and the
# sign-in machinery (tested on its own).
PUBLIC_PREFIXES = ("api/", "^api/", "admin/", "developer/", "static/", "_bench/", "give/", "join/", "introductions/",
                   "webhooks/stripe", "pay/", "donate/", "c/", "plans/",
                   "login/", "logout/", "password-reset/", "reset/")
# Signed-in pages outside DashboardMixin, with tests of their own.
SESSION_ROUTES = {"org-picker", "sandbox-toggle"}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    view_class: type | None
    params: tuple[str, ...]

    @property
    def has_post(self) -> bool:
        return self.view_class is not None and hasattr(self.view_class, "post")

    def __str__(self) -> str:
        return self.name


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def all_routes() -> list[Route]:
    out = []
    for pattern, p in _walk(get_resolver().url_patterns):
        params = tuple(getattr(p.pattern, "converters", {}).keys())
        out.append(Route(name=p.name or pattern, pattern=pattern, view_class=getattr(p.callback, "view_class", None), params=params))
    return out


def is_public(route: Route) -> bool:
    return route.pattern.startswith(PUBLIC_PREFIXES)


def dashboard_routes() -> list[Route]:
    return [r for r in all_routes() if not is_public(r) and r.view_class is not None and issubclass(r.view_class, DashboardMixin)]

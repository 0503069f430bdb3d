"""Demo payments for `make run`: the demo organisation connected to Stripe (an
account of localstripe's in development), an ACTIVE donation form and an ACTIVE
checkout link for a demo donor, printed with the test cards to use.

Idempotent: the connection, the form and the donor are made once; the link is
the same one while it can be paid, and a new one once it was paid, cancelled or
expired (so the printed link always takes a payment)."""
from __future__ import annotations

from donations.models import Campaign, CampaignStatus, Donor
from donations.services import donor_create
from engage import services
from engage.models import CheckoutLink, DonationForm, LinkStatus
from engage.representations import form_url, link_url
from organisations.services import organisation_stripe_connect
from together.demo import DemoContext, demo_step

DEMO_FORM_SLUG = "demo-donate"
DEMO_SANDBOX_FORM_SLUG = "demo-donate-sandbox"
DEMO_ACCOUNTS = {False: "acct_demoriverbank", True: "acct_demoriverbanksandbox"}
DEMO_LINK_DONOR = {"first_name": "Sam", "last_name": "Citizen", "email": "sam.citizen@example.org",
                   "address_line1": "8 Wattle Street", "suburb": "Fitzroy", "state": "VIC", "postcode": "3065"}
DEMO_LINK_DESCRIPTION = "$250 donation from Sam Citizen"
DEMO_CONSENT = "I confirm I am an Australian citizen or permanent resident, and this gift is my own money."
TEST_CARDS = "Test card: 4242 4242 4242 4242 (any future expiry, any CVC); declined: 4000 0000 0000 0002"


def _connect(ctx: DemoContext, organisation) -> None:
    if not organisation.stripe_connected:
        organisation_stripe_connect(organisation=organisation, actor=ctx.actor, account_id=DEMO_ACCOUNTS[organisation.is_sandbox])
        organisation.refresh_from_db()


def _form(ctx: DemoContext, organisation, slug: str) -> DonationForm:
    form = DonationForm.objects.filter(slug=slug).first()
    if form is not None:
        if form.organisation_id != organisation.id:
            raise RuntimeError(f"The demo form's slug /donate/{slug} belongs to another organisation.")
        return form
    campaign = (Campaign.objects.for_organisation(organisation).filter(name="Election Fighting Fund", status=CampaignStatus.ACTIVE)
                .values_list("id", flat=True).first())
    return services.form_create(
        organisation=organisation, actor=ctx.actor, name="Website donate page", slug=slug, status="ACTIVE",
        title="Stand up for the riverbank",
        description="Riverbank Action is people-powered. Your gift pays for organisers, leaflets and the campaign "
                    "to protect the river's parklands.",
        suggested_amounts_cents=[2500, 5000, 10000, 25000, 50000], default_amount_cents=5000, allow_custom=True,
        revenue_code="FCA-2026", campaign_id=campaign,
    )


def _link(ctx: DemoContext, organisation) -> CheckoutLink:
    donor = Donor.objects.for_organisation(organisation).filter(email__iexact=DEMO_LINK_DONOR["email"]).first()
    if donor is None:
        donor = donor_create(organisation=organisation, actor=ctx.actor, **DEMO_LINK_DONOR)
    for link in CheckoutLink.objects.for_organisation(organisation).filter(donor=donor, status=LinkStatus.ACTIVE,
                                                                           description=DEMO_LINK_DESCRIPTION).order_by("-created_at"):
        if link.is_payable:
            return link
    return services.checkout_link_create(organisation=organisation, actor=ctx.actor, donor_id=donor.id, amount_cents=25000,
                                         description=DEMO_LINK_DESCRIPTION, consent_text=DEMO_CONSENT, revenue_code="FCA-2026")


@demo_step(order=150, name="engage.payments")
def demo_payments(ctx: DemoContext) -> None:
    live, sandbox = ctx.organisation, ctx.sandbox
    _connect(ctx, live)
    form = _form(ctx, live, DEMO_FORM_SLUG)
    link = _link(ctx, live)
    if sandbox is not None:
        _connect(ctx, sandbox)
        _form(ctx, sandbox, DEMO_SANDBOX_FORM_SLUG)
    ctx.report(f"Demo donation form: {form_url(form.slug)}")
    ctx.report(f"Demo checkout link: {link_url(link.code)}")
    ctx.report(TEST_CARDS)

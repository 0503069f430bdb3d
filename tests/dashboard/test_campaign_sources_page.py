"""The campaign page's per-source breakdown (issue 19): by source code and by link
(UTM source, medium and campaign), each group's gifts, donors, money raised and share,
"(none)" for gifts without one, the figures the selector's (the campaign total's rules:
voided and refunded gifts out). Server-rendered through the whole stack, then in
Chromium at 1280 and 390 px (screenshots artifacts/screenshots/campaign-sources-*.png)."""
from __future__ import annotations

import datetime as dt

import pytest

from donations import services
from tests.dashboard.conftest import client_as, make_user, screenshot, sign_in
from tests.dashboard.test_charts import table
from together.actors import Actor

ACTOR = Actor.system("tests")


def _campaign(org):
    campaign = services.campaign_create(organisation=org, actor=ACTOR, name="Spring Appeal", goal_cents=100_000)
    donors = [services.donor_create(organisation=org, actor=ACTOR, first_name=f, last_name="Tran") for f in ("Mei", "Liam", "Ana")]
    day = dt.date(2026, 3, 2)

    def gift(donor, cents, **fields):
        return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                        amount_cents=cents, donation_date=day, campaign_id=campaign.id,
                                        payment_method="CASH", **fields)

    mail = {"source_code": "MAIL-SPRING", "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring-2026"}
    gift(donors[0], 25_000, **mail)
    gift(donors[1], 10_000, **mail)
    gift(donors[1], 40_000, source_code="EVENT-GALA")
    gift(donors[2], 5_000, utm_source="facebook", utm_medium="social")
    gift(donors[2], 2_500)
    voided = gift(donors[0], 99_000, source_code="EVENT-GALA")
    services.donation_void(organisation=org, actor=ACTOR, donation_id=voided.id, reason="typo")
    return campaign


@pytest.mark.django_db
def test_campaign_page_shows_the_breakdown_by_source_code_and_by_link(org):
    campaign = _campaign(org)
    client = client_as(make_user(org, "VIEWER"))
    page = client.get(f"/campaigns/{campaign.id}/").content.decode()
    # The page loads the tables into its slot (htmx), with a link to them for a browser without it.
    assert f'hx-get="/campaigns/{campaign.id}/sources" hx-trigger="load"' in page
    assert 'id="campaign-raised">$825.00<' in page
    body = client.get(f"/campaigns/{campaign.id}/sources", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in body.lower()  # the fragment only
    alone = client.get(f"/campaigns/{campaign.id}/sources").content.decode()
    assert '<main id="main">' in alone and table(alone, "campaign-source-codes") == table(body, "campaign-source-codes")
    assert table(body, "campaign-source-codes") == [
        ["EVENT-GALA", "1", "1", "$400.00", "48.5 %"],
        ["MAIL-SPRING", "2", "2", "$350.00", "42.4 %"],
        ["(none)", "2", "1", "$75.00", "9.1 %"],
    ]
    assert table(body, "campaign-source-links") == [
        ["(none)", "(none)", "(none)", "2", "2", "$425.00", "51.5 %"],
        ["newsletter", "email", "spring-2026", "2", "2", "$350.00", "42.4 %"],
        ["facebook", "social", "(none)", "1", "1", "$50.00", "6.1 %"],
    ]
    assert f'href="/donations/?campaign_id={campaign.id}&amp;source_code=MAIL-SPRING"' in body
    assert "$825.00 from 5 gifts" in body  # the same as Raised


@pytest.mark.django_db
def test_a_campaign_without_gifts_has_no_breakdown(org):
    campaign = services.campaign_create(organisation=org, actor=ACTOR, name="Quiet")
    client = client_as(make_user(org, "VIEWER"))
    assert 'campaign-sources-slot' not in client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert "No counted gifts yet." in client.get(f"/campaigns/{campaign.id}/sources", HTTP_HX_REQUEST="true").content.decode()


@pytest.mark.django_db
def test_another_organisations_campaign_sources_are_404(org, other_org):
    campaign = _campaign(org)
    assert client_as(make_user(other_org, "ADMIN")).get(f"/campaigns/{campaign.id}/sources").status_code == 404


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_breakdown_fits_desktop_and_phone(page, context, live_server, org):
    campaign = _campaign(org)
    sign_in(context, make_user(org, "VIEWER"), live_server)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/campaigns/{campaign.id}/")
        codes = page.locator("#campaign-sources-slot #campaign-source-codes tbody tr")
        codes.first.wait_for()  # loaded into the page's slot
        assert codes.count() == 3 and codes.first.is_visible()
        assert page.locator("#campaign-source-links tbody tr").count() == 3
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the campaign page overflows by {overflow}px at {width}px"
        page.locator("#campaign-sources").scroll_into_view_if_needed()
        screenshot(page, f"campaign-sources-{width}")

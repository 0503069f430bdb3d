"""Issue 13, defect 2: the public giving form told anyone what a named person had
given ("…past the NSW cap of $7,900.00 … $900.00 remains" for any email typed in).

Now a public page refuses a gift that depends on the donor's records with one fixed
sentence (compliance.services.public_refusal_message): no amount, total or cap, the
same for a known email and a new one, nothing stored. Staff still see the detail
(API envelope, dashboard, the recipient's audit trail). Anonymous POSTs that pledge
(and the introduction sign-up) are limited per client (together.ratelimit): N per
window, then a 429 page with Retry-After; atomic across threads of a live server."""
from __future__ import annotations

import concurrent.futures
import html
import re
import shutil
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from compliance import services as compliance
from compliance.models import RegimeRule
from donations import services as donation_services
from donations.models import Donation, Donor
from organisations.models import AuditEntry, Role
from recommendations import services
from recommendations.models import SplitGift
from tests.conftest import client_for, make_key, make_org
from tests.recommendations.conftest import SYSTEM, link, make_user
from together import ratelimit
from together.exceptions import ValidationFailed

KNOWN = "known.donor@example.org"
DONOR_POST = {"first_name": "Alice", "last_name": "Ng", "address_line1": "1 River St", "suburb": "Fitzroy",
              "state": "NSW", "postcode": "2000", "country": "AU"}
FIGURES = ("900", "7,900", "7900", "7,000", "7000", "79.00", "70.00")  # the room, the cap, the donor's total


def _regime_rules():
    if not RegimeRule.objects.exists():  # a transactional test's flush removes the migration's rows
        from compliance.regimes import load_default_rules

        load_default_rules(RegimeRule, django_settings.FEDERAL_REFORM_COMMENCEMENT)


def _nsw_setup():
    """A recommending organisation, one NSW recipient, an OPEN set, and a known donor
    who has given the recipient $7,000 this financial year: $900 of the $7,900 cap left."""
    _regime_rules()
    directing, recipient = make_org("Climate Collective"), make_org("Riverbank Action Fund")
    compliance.compliance_settings_update(organisation=recipient, actor=SYSTEM, default_jurisdiction="NSW")
    the_link = link(directing, recipient)
    the_set = services.recommendation_set_create(
        organisation=directing, actor=SYSTEM, name="NSW climate", amount_mode="OPEN",
        allocations=[{"recipient_org_account_link_id": the_link.id, "amount_cents": 0}])
    donor = donation_services.donor_create(organisation=recipient, actor=SYSTEM, first_name="Kim", last_name="Known", email=KNOWN)
    donation_services.donation_record(organisation=recipient, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                      amount_cents=700_000, donation_date=timezone.localdate())
    return directing, recipient, the_set, donor


def _alert(body: str) -> str:
    match = re.search(r'<div class="alert" role="alert" id="error-summary".*?</div>', body, re.S)
    assert match, body
    return match.group(0)


def _text(body: str) -> str:
    """The page's visible text: tags (ids, tokens, entered values) removed."""
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", body, flags=re.S)))


def _counts(recipient):
    return (SplitGift.objects.count(), Donation.objects.filter(organisation=recipient).count(),
            Donor.objects.filter(organisation=recipient).count())


# --- the refusal ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_refused_gift_reveals_nothing_and_reads_the_same_for_a_known_and_an_unknown_email():
    directing, recipient, the_set, donor = _nsw_setup()
    before = _counts(recipient)
    # The known donor, $1,000 with $900 of room; a stranger, $8,000 past the whole cap.
    known = Client().post(f"/give/{the_set.id}", {**DONOR_POST, "email": KNOWN, "amount_0": "1000"})
    unknown = Client().post(f"/give/{the_set.id}", {**DONOR_POST, "email": "nobody.new@example.org", "amount_0": "8000"})
    assert known.status_code == unknown.status_code == 400
    known_body, unknown_body = known.content.decode(), unknown.content.decode()
    assert _alert(known_body) == _alert(unknown_body)
    alert = _alert(known_body)
    assert "We can&#x27;t accept this gift online" in alert and directing.name in alert
    assert "$" not in alert and not re.search(r"\d", _text(alert).replace(directing.name, ""))
    for body in (known_body, unknown_body):
        text = _text(body)
        assert "cap" not in text.lower() and "remain" not in text.lower() and "NSW" not in text.replace("NSW climate", "")
        for figure in FIGURES:
            assert figure not in text, figure
        assert recipient.name not in _alert(body)
    assert _counts(recipient) == before  # no pledge, no donation, no new donor


@pytest.mark.django_db
def test_staff_still_see_the_detail():
    directing, recipient, the_set, donor = _nsw_setup()
    Client().post(f"/give/{the_set.id}", {**DONOR_POST, "email": KNOWN.upper(), "amount_0": "1000"})
    # The refusing recipient's audit trail holds the detail (and only the recipient's).
    entry = AuditEntry.objects.get(action="donation.refused")
    assert entry.organisation_id == recipient.id and entry.object_id == donor.id
    assert entry.after["reason"] == "donor_cap_exceeded" and entry.after["remaining_cents"] == 90_000
    assert "$900.00 remains" in entry.after["message"] and entry.after["donor_known"] is True
    assert not AuditEntry.objects.filter(organisation=directing, action="donation.refused").exists()
    # The API: the envelope keeps the room.
    response = client_for(make_key(recipient, "WRITE")).post("/api/v1/donations", {
        "donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 100_000,
        "donation_date": timezone.localdate().isoformat()}, format="json")
    error = response.json()["error"]
    assert response.status_code == 400 and error["reason"] == "donor_cap_exceeded" and error["remaining_cents"] == 90_000
    assert "$900.00 remains" in error["message"]
    # The dashboard's offline split gift: the message with the room, beside the field.
    editor = Client()
    editor.force_login(make_user(directing, Role.EDITOR))
    page = editor.post(f"/engage/recommendation-sets/{the_set.id}", {
        **DONOR_POST, "email": KNOWN, "amount_0": "1000", "donation_date": timezone.localdate().isoformat(),
        "payment_method": "BANK_TRANSFER"})
    assert page.status_code == 400 and "$900.00 remains" in page.content.decode()


@pytest.mark.django_db
def test_a_bad_country_is_refused_the_same_for_a_known_and_a_new_email():
    """It used to be checked only when a recipient created a new donor: refused for a
    new email, accepted for a known one, which told whether the email was a donor."""
    directing, recipient, the_set, donor = _nsw_setup()
    for email in (KNOWN, "nobody.new@example.org"):
        response = Client().post(f"/give/{the_set.id}", {**DONOR_POST, "country": "ZZ", "email": email, "amount_0": "10"})
        assert response.status_code == 400 and response.context["form"].errors["country"], email
    assert not SplitGift.objects.exists()


def test_public_refusal_message_is_one_fixed_sentence_for_donor_specific_refusals_only():
    cap = compliance.CapExceeded("This gift of $1,000.00 would take the donor past the NSW cap: $900.00 remains.",
                                 param="amount_cents", reason="donor_cap_exceeded", remaining_cents=90_000)
    plain_cap = ValidationFailed("Over the cap: $1.00 remains.", reason="donor_cap_exceeded", remaining_cents=100)
    marked = ValidationFailed("Riverbank: campaign archived.")
    marked.donor_specific = True
    messages = {compliance.public_refusal_message(e, organisation_name="Org A") for e in (cap, plain_cap, marked)}
    assert messages == {compliance.PUBLIC_REFUSAL_MESSAGE.format(organisation="Org A")}
    assert compliance.public_refusal_message(ValidationFailed("Email is not a valid address.", param="email"),
                                             organisation_name="Org A") is None


# --- the per-client limit --------------------------------------------------------------------

@pytest.mark.django_db
def test_the_n_plus_first_post_from_one_client_is_429_with_retry_after_and_another_client_is_admitted(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "3/600"
    directing, recipient, the_set, donor = _nsw_setup()
    url = f"/give/{the_set.id}"
    one = Client(REMOTE_ADDR="203.0.113.7")
    for _ in range(3):
        assert one.post(url, {**DONOR_POST, "email": "", "amount_0": "10"}).status_code == 400  # admitted, form errors
    limited = one.post(url, {**DONOR_POST, "email": "a@example.org", "amount_0": "10"})
    assert limited.status_code == 429 and 590 <= int(limited["Retry-After"]) <= 600
    assert limited["Cache-Control"] == "no-store"
    assert "Please wait a moment" in limited.content.decode() and "10 minutes" in limited.content.decode()
    assert not SplitGift.objects.exists()  # the limited POST was not processed
    # Another client, and the same address for another organisation's form, are admitted.
    other = Client(REMOTE_ADDR="203.0.113.8").post(url, {**DONOR_POST, "email": "b@example.org", "amount_0": "10"})
    assert other.status_code == 200 and SplitGift.objects.count() == 1
    # An IPv6 client counts by its /64: rotating the interface id does not reset the budget.
    for n in range(3):
        Client(REMOTE_ADDR=f"2001:db8:1:2::{n + 1}").post(url, {**DONOR_POST, "email": ""})
    assert Client(REMOTE_ADDR="2001:db8:1:2::99").post(url, {**DONOR_POST, "email": ""}).status_code == 429


@pytest.mark.django_db
def test_the_forwarded_header_counts_only_when_configured(settings, rf):
    request = rf.post("/give/x", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")
    settings.CLIENT_IP_HEADER = ""
    assert ratelimit.client_ip(request) == "10.0.0.1"  # a spoofable header is ignored by default
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    assert ratelimit.client_ip(request) == "203.0.113.9"  # the entry our proxy appended, not the client's claim
    assert ratelimit.client_ip(rf.post("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="garbage")) == "10.0.0.1"


def test_the_limit_setting(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "25/60"
    assert ratelimit.public_post_limit() == (25, 60)
    settings.PUBLIC_POST_RATE_LIMIT = "0"
    assert ratelimit.public_post_limit() == (0, 0)
    settings.PUBLIC_POST_RATE_LIMIT = "lots"
    assert ratelimit.public_post_limit() == (10, 600)  # malformed: the default, never a 500 on a public page


@pytest.mark.django_db
def test_introduction_sign_up_is_limited_per_client(settings, org):
    settings.PUBLIC_POST_RATE_LIMIT = "2/600"
    invite = services.introduction_create(organisation=org, actor=SYSTEM, invitee_email="new@example.org",
                                          invitee_org_name_hint="New Org")
    url = f"/introductions/{invite.token}"
    client = Client(REMOTE_ADDR="203.0.113.20")
    body = {"action": "signup", "full_name": "Sam", "email": "x", "password": "short", "organisation_name": "New Org"}
    assert [client.post(url, body).status_code for _ in range(3)] == [400, 400, 429]


@pytest.mark.django_db
def test_redis_down_fails_open(settings, monkeypatch):
    class Down:
        def eval(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    settings.PUBLIC_POST_RATE_LIMIT = "1/600"
    directing, recipient, the_set, donor = _nsw_setup()
    monkeypatch.setattr(ratelimit, "client", lambda: Down())
    for _ in range(3):
        assert Client().post(f"/give/{the_set.id}", {**DONOR_POST, "email": ""}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_at_a_live_server_admit_at_most_n(settings, live_server):
    settings.PUBLIC_POST_RATE_LIMIT = "5/600"
    directing, recipient, the_set, donor = _nsw_setup()
    url = f"{live_server.url}/give/{the_set.id}"
    session = requests.Session()
    token = session.get(url, timeout=10).cookies["csrftoken"]
    cookies = {"csrftoken": token}

    def post(_):
        return requests.post(url, data={**DONOR_POST, "email": "", "csrfmiddlewaretoken": token}, cookies=cookies,
                             timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(post, range(20)))
    assert statuses.count(429) == 15 and statuses.count(400) == 5, statuses


# --- how the two pages look ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(django_settings.BASE_DIR) / "artifacts"


@pytest.mark.django_db(transaction=True)
def test_refusal_and_429_pages_in_chromium(settings, live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    settings.PUBLIC_POST_RATE_LIMIT = "2/600"
    directing, recipient, the_set, donor = _nsw_setup()
    ARTIFACTS.mkdir(exist_ok=True)
    fields = {"First name": "Kim", "Last name": "Known", "Email": KNOWN, "Address": "1 River St", "Suburb": "Sydney",
              "State": "NSW", "Postcode": "2000", recipient.name: "1000"}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width, name in ((390, "mobile"), (1280, "desktop")):
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.set_default_timeout(10_000)
                # One client (127.0.0.1), a budget of 2: the phone's refusal and retry use it up, so the
                # desktop's first POST is the 429 page; then the limit is lifted for the desktop refusal.
                page.goto(f"{live_server.url}/give/{the_set.id}")
                for label, value in fields.items():
                    page.get_by_label(label, exact=True).fill(value)
                page.get_by_role("button", name="Pledge my gift").click()
                page.wait_for_load_state()
                if name == "mobile":
                    summary = page.locator("#error-summary").inner_text()
                    assert "can't accept this gift online" in summary and "$" not in summary
                    page.screenshot(path=str(ARTIFACTS / f"give-refused-{name}.png"), full_page=True)
                    page.get_by_role("button", name="Pledge my gift").click()  # the second POST: the last admitted
                    page.wait_for_load_state()
                    page.get_by_role("button", name="Pledge my gift").click()  # the third: 429
                    page.wait_for_selector("text=Please wait a moment")
                    page.screenshot(path=str(ARTIFACTS / f"give-429-{name}.png"), full_page=True)
                else:
                    page.wait_for_selector("text=Please wait a moment")
                    page.screenshot(path=str(ARTIFACTS / f"give-429-{name}.png"), full_page=True)
                    settings.PUBLIC_POST_RATE_LIMIT = "0"
                    page.goto(f"{live_server.url}/give/{the_set.id}")
                    for label, value in fields.items():
                        page.get_by_label(label, exact=True).fill(value)
                    page.get_by_role("button", name="Pledge my gift").click()
                    page.wait_for_selector("#error-summary")
                    page.screenshot(path=str(ARTIFACTS / f"give-refused-{name}.png"), full_page=True)
                context.close()
        finally:
            browser.close()
    assert not SplitGift.objects.exists()

"""Issue 13, defects 3, 8 and 7 (money, dates and report edges).

- Money typed into the dashboard is parsed by one strict function
  (together.money.parse_amount_cents): no exponents (`1e5` was stored as $100,000,
  `1e999997` held a worker for half a minute), no NaN/Infinity, no full-width digits,
  bounded length. Every dashboard form with a money field is found by introspection
  and attacked with the same values.
- One date range for gifts (1900-01-01 to 2999-12-31), checked in the service, so the
  dashboard gift form, batches and the API all refuse 0001-01-01 and 9999-12-31.
- Reports at the edges of the calendar, filters beyond bigint, batch control numbers
  that overflow and a damaged formset answer 400 (API envelope / form error), never 500.
"""
from __future__ import annotations

import datetime as dt
import importlib
import re
import time
from decimal import Decimal

import pytest
from django import forms
from django.apps import apps
from django.urls import reverse
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from compliance import services as compliance
from donations import services
from donations.models import Campaign, DepositBatch, Donation
from engage.models import CheckoutLink, DonationForm
from payments.models import RecurringPlan
from tests.conftest import client_for, make_key
from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import SYSTEM
from tests.payments.helpers import connect, make_form, pay_and_sync, start_form_payment
from tests.support.stripe import ensure_localstripe
from tests.support.api import assert_error
from together.exceptions import ValidationFailed
from together.money import MAX_CENTS, MAX_TEXT_LENGTH, MoneyField, MoneyParseError, parse_amount_cents

pytestmark = pytest.mark.django_db

DAY = dt.date(2027, 3, 15)
EDGE_DATES = ["0001-01-01", "9999-12-31"]

# The time limits below are this thread's CPU time (time.thread_time), the better of two tries: an
# input that makes the server compute is slow both times and is caught; a busy machine's scheduling
# (a CI run's 1.08 s of wall time for one post) and a first call's cold costs (a CI run's 1.14 s of
# CPU for the first post of a form in its worker: templates compiled, modules imported) are not.


def fastest(call, tries=2):
    """(the last result, the least CPU time of `tries` calls): a hostile input is slow every time."""
    best = None
    for _ in range(tries):
        started = time.thread_time()
        result = call()
        elapsed = time.thread_time() - started
        best = elapsed if best is None else min(best, elapsed)
    return result, best


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.RATE_LIMIT_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # PBKDF2 costs ~2 s a user here


@pytest.fixture
def editor(org):
    return make_user(org, "EDITOR", name="Eddie Editor")


@pytest.fixture
def viewer(org):
    return make_user(org, "VIEWER", name="Vera Viewer")

# --- the parser -----------------------------------------------------------------------------------

ASCII_DIGITS = st.sampled_from("0123456789")


def _group(dollars: int) -> str:
    return f"{dollars:,}"


@st.composite
def valid_amounts(draw):
    """(text, cents) for every shape of the grammar: [$][ ]digits-or-grouped[.d or .dd], spaces around."""
    dollars = draw(st.integers(min_value=0, max_value=MAX_CENTS // 100 - 1))
    grouped = draw(st.booleans()) and dollars >= 1000
    body = _group(dollars) if grouped else str(dollars)
    if not grouped and draw(st.booleans()):
        body = "0" * draw(st.integers(0, 3)) + body  # leading zeros are digits too
    cents_digits = draw(st.sampled_from(["", "d", "dd"]))
    cents = 0
    if cents_digits == "d":
        tenth = draw(st.integers(0, 9))
        body += f".{tenth}"
        cents = tenth * 10
    elif cents_digits == "dd":
        cents = draw(st.integers(0, 99))
        body += f".{cents:02d}"
    if draw(st.booleans()):
        body = "$" + " " * draw(st.integers(0, 2)) + body
    text = " " * draw(st.integers(0, 2)) + body + " " * draw(st.integers(0, 2))
    return text, dollars * 100 + cents


@hsettings(max_examples=400, deadline=None)
@given(valid_amounts())
def test_parser_accepts_the_grammar_and_gives_the_intended_cents(case):
    text, cents = case
    assert parse_amount_cents(text) == cents


# An independent reading of the grammar, through Decimal, for arbitrary text.
ORACLE = re.compile(r"[ \t\r\n]*(\$[ ]*)?((?:[0-9]{1,3}(?:,[0-9]{3})+)|[0-9]+)(\.[0-9]{1,2})?[ \t\r\n]*", re.ASCII)


def _oracle(text: str) -> int | None:
    if len(text) > MAX_TEXT_LENGTH:
        return None
    m = ORACLE.fullmatch(text)
    if not m:
        return None
    value = Decimal(m.group(2).replace(",", "") + (m.group(3) or "")) * 100
    return int(value) if value <= MAX_CENTS else None


ALPHABET = st.sampled_from(list("0123456789,.$ -+eE_") + ["\u00a0", "\uff11", "\u0661", "N", "a", "I", "n", "f", "\t"])


@hsettings(max_examples=600, deadline=None)
@given(st.one_of(st.text(ALPHABET, max_size=24), st.text(max_size=24)))
def test_parser_accepts_exactly_the_grammar(text):
    expected = _oracle(text)
    if expected is None:
        with pytest.raises(MoneyParseError):
            parse_amount_cents(text)
    else:
        assert parse_amount_cents(text) == expected


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mantissa=st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,2})?", fullmatch=True),
       exponent=st.from_regex(r"[eE][+-]?[0-9]{1,7}", fullmatch=True))
def test_parser_refuses_every_exponent_quickly(mantissa, exponent):
    _, elapsed = fastest(lambda: pytest.raises(MoneyParseError, parse_amount_cents, mantissa + exponent))
    assert elapsed < 0.05


HOSTILE = ["1e999997", "1e5", "1E5", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "１００", "١٠٠", "1_000",
           "-5", "+5", "0x10", "1.234", "1,2,3", "12,34", ".5", "5.", "", " ", "$", "1" * 10_000, "9" * 41,
           "100000000000.01", "999999999999", "1e999997" * 1000]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:20])
def test_parser_refuses_hostile_input_quickly(text):
    info, elapsed = fastest(lambda: pytest.raises(MoneyParseError, parse_amount_cents, text))
    assert elapsed < 0.01
    assert info.value.message and isinstance(info.value, ValueError)


def test_parser_bounds():
    assert parse_amount_cents("99,999,999,999.99") == MAX_CENTS - 1
    assert parse_amount_cents("100000000000") == MAX_CENTS
    with pytest.raises(MoneyParseError, match="too large"):
        parse_amount_cents("100000000000.01")
    assert parse_amount_cents("5", max_cents=500) == 500
    with pytest.raises(MoneyParseError):
        parse_amount_cents("5.01", max_cents=500)


# --- every dashboard form with a money field -------------------------------------------------------

def _money_forms() -> set[type]:
    """Form classes of every installed app whose fields include a MoneyField."""
    for config in apps.get_app_configs():
        try:
            importlib.import_module(f"{config.name}.forms")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.forms":
                raise
    found, stack = set(), [forms.Form]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if any(isinstance(f, MoneyField) for f in getattr(cls, "base_fields", {}).values()):
            found.add(cls)
    return found


@pytest.fixture
def world(org):
    from payments import recurring

    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Mona", last_name="Money", email="mona@example.org")
    donation = services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=12_345, donation_date=DAY,
                                        donation_type="MONETARY", payment_method="CHEQUE")
    campaign = services.campaign_create(organisation=org, actor=SYSTEM, name="Spring", goal_cents=100_000)
    connect(org)  # checkout links need a connected Stripe account
    plan = recurring.plan_create(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=2_000, frequency="MONTHLY",
                                 payment_method="MANUAL", start_date=dt.date.today())
    return {"org": org, "donor": donor, "donation": donation, "campaign": campaign, "plan": plan}


def _card_gift(w):
    """A $2,000 card gift paid through localstripe (made on first use: only the refund rows need Stripe)."""
    if "card_gift" not in w:
        ensure_localstripe()
        payment = pay_and_sync(start_form_payment(w["org"], make_form(w["org"], name="Card", title="Card"), 200_000))
        w["card_gift"] = payment.parts.get().donation
    return w["card_gift"]


def _batch_data(w, *, total="10", amount="10", count="1", date=""):
    return {"reference": "DEP-MONEY", "deposit_date": DAY.isoformat(), "payment_method": "CHEQUE", "control_count": count,
            "control_total": total, "rows-TOTAL_FORMS": "1", "rows-INITIAL_FORMS": "0", "save": "1",
            "rows-0-donor": "mona@example.org", "rows-0-amount": amount, "rows-0-donation_date": date}


def _state(w) -> tuple:
    """Everything a money form could store."""
    org = w["org"]
    w["donation"].refresh_from_db()
    w["campaign"].refresh_from_db()
    w["plan"].refresh_from_db()
    refunded = Donation.objects.get(pk=w["card_gift"].pk).refunded_cents if "card_gift" in w else None
    return (Donation.objects.filter(organisation=org).count(), DepositBatch.objects.filter(organisation=org).count(),
            Campaign.objects.filter(organisation=org).count(), w["donation"].amount_cents, w["campaign"].goal_cents,
            DonationForm.objects.filter(organisation=org).count(), CheckoutLink.objects.filter(organisation=org).count(),
            RecurringPlan.objects.filter(organisation=org).count(), w["plan"].amount_cents, refunded)


def _form_data(v):
    return {"name": "Money form", "title": "Money", "slug": "money-form", "status": "DRAFT", "suggested_amounts": "25, 50",
            "allow_custom": "on", "default_amount": "", "minimum": "", "maximum": v, "phone_visibility": "OPTIONAL",
            "address_visibility": "OPTIONAL", "revenue_code": "", "campaign": ""}


# One row per money form: (form class name, URL, POST body with the money value `v`). The test below fails
# when a form with a MoneyField appears that this table does not cover.
MONEY_FORMS = {
    "GiftForm": (lambda w: reverse("gift-new"),
                 lambda w, v: {"donor": w["donor"].id, "method": "CHEQUE", "amount": v, "donation_date": DAY.isoformat()}),
    "DonationEditForm": (lambda w: reverse("donation-detail", args=[w["donation"].id]),
                         lambda w, v: {"action": "edit", "amount": v, "donation_date": DAY.isoformat()}),
    "CampaignForm": (lambda w: reverse("campaign-new"), lambda w, v: {"name": "Autumn", "goal": v}),
    "CampaignForm(edit)": (lambda w: reverse("campaign-edit", args=[w["campaign"].id]), lambda w, v: {"name": "Spring", "goal": v}),
    "BatchHeaderForm": (lambda w: reverse("batch-new"), lambda w, v: _batch_data(w, total=v)),
    "BatchRowForm": (lambda w: reverse("batch-new"), lambda w, v: _batch_data(w, amount=v)),
    "DonationFormForm": (lambda w: reverse("engage-form-new"), lambda w, v: _form_data(v)),
    "DonationFormForm(minimum)": (lambda w: reverse("engage-form-new"), lambda w, v: _form_data("") | {"minimum": v, "slug": "money-minimum"}),
    "CheckoutLinkForm": (lambda w: reverse("engage-link-new"),
                         lambda w, v: {"donor": w["donor"].id, "amount": v, "expires_in_days": "30", "campaign": ""}),
    "PlanAmountForm": (lambda w: reverse("recurring-detail", args=[w["plan"].id]), lambda w, v: {"action": "amount", "amount": v}),
    "ManualPlanForm": (lambda w: reverse("recurring-donor-fragment", args=[w["donor"].id]),
                       lambda w, v: {"amount": v, "frequency": "MONTHLY", "start_date": dt.date.today().isoformat(), "campaign": ""}),
    "RefundForm": (lambda w: reverse("donation-detail", args=[_card_gift(w).id]),
                   lambda w, v: {"action": "refund", "refund_date": _card_gift(w).donation_date.isoformat(), "reason": "Money",
                                 "amount": v}),
}
BAD_MONEY = ["1e999997", "1e5", "NaN", "Infinity", "１００", "1" * 10_000]
MONEY_ERRORS = ("Enter an amount in dollars", "too long for an amount", "too large")


def test_the_table_covers_every_money_form():
    names = {name.split("(")[0] for name in MONEY_FORMS}
    assert {cls.__name__ for cls in _money_forms()} == names


def test_valid_amounts_still_work_through_every_form(world, editor):
    """The table's bodies are right: a good amount goes through every row (else the bad-value test proves nothing)."""
    client = client_as(editor)
    for name, (url, body) in MONEY_FORMS.items():
        response = client.post(url(world), body(world, "1,234.50"))
        assert response.status_code == 302, (name, response.status_code, response.content[:2000])
    world["donation"].refresh_from_db()
    assert world["donation"].amount_cents == 123_450
    assert Campaign.objects.get(organisation=world["org"], name="Autumn").goal_cents == 123_450
    assert DonationForm.objects.get(organisation=world["org"], slug="money-form").maximum_cents == 123_450
    assert CheckoutLink.objects.get(organisation=world["org"]).amount_cents == 123_450
    world["plan"].refresh_from_db()
    assert world["plan"].amount_cents == 123_450
    assert RecurringPlan.objects.filter(organisation=world["org"], payment_method="MANUAL", amount_cents=123_450).count() == 2
    assert Donation.objects.get(pk=world["card_gift"].pk).refunded_cents == 123_450


@pytest.mark.parametrize("value", BAD_MONEY, ids=["exp-huge", "exp", "nan", "inf", "fullwidth", "10k-chars"])
@pytest.mark.parametrize("name", list(MONEY_FORMS))
def test_every_money_form_refuses_hostile_amounts(world, editor, name, value):
    url, body = MONEY_FORMS[name]
    address, data = url(world), body(world, value)  # before the snapshot: a row's url may make its gift
    before = _state(world)
    client = client_as(editor)
    response, elapsed = fastest(lambda: client.post(address, data))
    assert elapsed < 1.0, elapsed
    assert response.status_code == 400, (response.status_code, response.content[:500])
    page = response.content.decode()
    assert any(message in page for message in MONEY_ERRORS), page[:3000]
    assert _state(world) == before


def test_cap_room_with_a_huge_exponent_answers_at_once(org, viewer):
    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="FED", jurisdiction="FEDERAL")
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Cap", last_name="Room")
    client = client_as(viewer)
    base = {"donor": donor.id, "donation_date": DAY.isoformat(), "revenue_code": "FED"}
    for amount in ("1e999997", "1e5", "NaN", "１００", "9" * 10_000):
        response, elapsed = fastest(lambda: client.get(reverse("gift-cap-room"), base | {"amount": amount}))
        assert elapsed < 1.0, elapsed
        assert response.status_code == 200
        page = response.content.decode()
        assert "cap room" in page and "Amount:" in page and "over the cap" not in page, page
    # A real amount over the cap is still judged.
    page = client.get(reverse("gift-cap-room"), base | {"amount": "60,000"}).content.decode()
    assert "over the cap" in page and "Amount:" not in page


@pytest.mark.parametrize("day", EDGE_DATES + ["0001-01-01T00:00"])
def test_cap_room_at_the_calendar_edges_is_no_error(org, viewer, day):
    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="NSW-1", jurisdiction="NSW")
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Edge", last_name="Day")
    response = client_as(viewer).get(reverse("gift-cap-room"), {"donor": donor.id, "donation_date": day, "revenue_code": "NSW-1", "amount": "5"})
    assert response.status_code == 200


@pytest.mark.parametrize("period", EDGE_DATES)
def test_donor_page_at_the_calendar_edges_is_no_error(org, viewer, period):
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Edge", last_name="Period")
    response = client_as(viewer).get(reverse("donor-detail", args=[donor.id]), {"period": period})
    assert response.status_code == 200
    assert "must be between" in response.content.decode()


# --- batches: overflowing control numbers and a damaged formset ----------------------------------------

@pytest.mark.parametrize("field,value", [
    ("control_count", "1" + "0" * 30), ("control_count", "99999999999"), ("control_count", "10001"),
    ("control_total", "1" + "0" * 30), ("control_total", "9" * 13),
])
def test_batch_control_numbers_that_overflow_are_form_errors(world, editor, field, value):
    data = _batch_data(world) | {field: value}
    before = _state(world)
    response = client_as(editor).post(reverse("batch-new"), data)
    assert response.status_code == 400
    assert _state(world) == before


@pytest.mark.parametrize("total_forms", ["abc", "", "1e3", "9" * 30, "-1", "９"])
@pytest.mark.parametrize("button", ["add_rows", "save"])
def test_batch_with_a_damaged_formset_is_a_form_error(world, editor, total_forms, button):
    data = _batch_data(world) | {"rows-TOTAL_FORMS": total_forms, button: "1"}
    before = _state(world)
    response = client_as(editor).post(reverse("batch-new"), data)
    if button == "save" and total_forms in ("-1", "９"):
        # Django's management form reads these as counts (no rows; nine rows, eight blank): a draft, not a crash.
        assert response.status_code == 302
        return
    assert response.status_code == 400, response.status_code
    assert _state(world) == before
    page = response.content.decode()
    assert any(m in page for m in ("arrived damaged", "ManagementForm data is missing", "Please submit at most")), page[:3000]


def test_batch_service_bounds_its_numbers(world):
    org, donor = world["org"], world["donor"]
    row = {"donor_id": donor.id, "amount_cents": 1_000}
    for kwargs, param in [
        ({"control_count": 10**30}, "control_count"), ({"control_count": 2**31}, "control_count"),
        ({"control_total_cents": 10**30}, "control_total_cents"), ({"rows": [row | {"amount_cents": 10**30}]}, "rows[0].amount_cents"),
        ({"rows": [row | {"amount_cents": True}]}, "rows[0].amount_cents"),
    ]:
        args = {"reference": "DEP-SVC", "deposit_date": DAY, "control_count": 1, "control_total_cents": 1_000, "rows": [row]} | kwargs
        with pytest.raises(ValidationFailed) as info:
            services.batch_save_draft(organisation=org, actor=SYSTEM, **args)
        assert info.value.param == param
    assert not DepositBatch.objects.filter(organisation=org, reference="DEP-SVC").exists()


# --- one date range for every path (defect 8) -------------------------------------------------------

@pytest.mark.parametrize("day", [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1899, 12, 31), dt.date(3000, 1, 1)])
def test_service_refuses_gifts_off_the_calendar(world, day):
    org, donor = world["org"], world["donor"]
    with pytest.raises(ValidationFailed) as info:
        services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=100, donation_date=day,
                                 donation_type="MONETARY", payment_method="CASH")
    assert info.value.param == "donation_date"
    with pytest.raises(ValidationFailed) as info:
        services.donation_update(organisation=org, actor=SYSTEM, donation_id=world["donation"].id, donation_date=day)
    assert info.value.param == "donation_date"
    with pytest.raises(ValidationFailed) as info:
        services.batch_save_draft(organisation=org, actor=SYSTEM, reference="DEP-DAY", deposit_date=day, control_count=1,
                                  control_total_cents=100, rows=[{"donor_id": donor.id, "amount_cents": 100}])
    assert info.value.param == "deposit_date"
    with pytest.raises(ValidationFailed) as info:
        services.batch_save_draft(organisation=org, actor=SYSTEM, reference="DEP-DAY", deposit_date=DAY, control_count=1,
                                  control_total_cents=100, rows=[{"donor_id": donor.id, "amount_cents": 100, "donation_date": day}])
    assert info.value.param == "rows[0].donation_date"
    with pytest.raises(ValidationFailed) as info:
        services.campaign_create(organisation=org, actor=SYSTEM, name="Off", starts_at=day)
    assert info.value.param == "starts_at"
    if day > DAY:
        with pytest.raises(ValidationFailed) as info:
            services.donation_refund(organisation=org, actor=SYSTEM, donation_id=world["donation"].id, refund_date=day, reason="x")
        assert info.value.param == "refund_date"
    assert Donation.objects.filter(organisation=org).count() == 1
    world["donation"].refresh_from_db()
    assert world["donation"].donation_date == DAY


def test_service_accepts_the_ends_of_the_range(world):
    for day in (services.DATE_MIN, services.DATE_MAX):
        services.donation_record(organisation=world["org"], actor=SYSTEM, donor_id=world["donor"].id, amount_cents=100,
                                 donation_date=day, donation_type="MONETARY", payment_method="CASH")


@pytest.mark.parametrize("day", EDGE_DATES)
@pytest.mark.parametrize("code,jurisdiction", [("", None), ("NSW-1", "NSW"), ("VIC-1", "VIC"), ("FED", "FEDERAL")])
def test_dashboard_gift_form_refuses_edge_dates(world, editor, day, code, jurisdiction):
    if jurisdiction:
        compliance.revenue_code_create(organisation=world["org"], actor=SYSTEM, code=code, jurisdiction=jurisdiction)
    before = _state(world)
    response = client_as(editor).post(reverse("gift-new"), {"donor": world["donor"].id, "method": "CHEQUE", "amount": "10",
                                                          "donation_date": day, "revenue_code": code})
    assert response.status_code == 400
    assert "must be between 1900-01-01 and 2999-12-31" in response.content.decode()
    assert _state(world) == before
    response = client_as(editor).post(reverse("donation-detail", args=[world["donation"].id]),
                                      {"action": "edit", "amount": "10", "donation_date": day, "revenue_code": code})
    assert response.status_code == 400
    assert _state(world) == before


@pytest.mark.parametrize("day", EDGE_DATES)
def test_dashboard_batches_refuse_edge_dates(world, editor, day):
    before = _state(world)
    client = client_as(editor)
    response = client.post(reverse("batch-new"), _batch_data(world, date=day))
    assert response.status_code == 400
    assert "must be between" in response.content.decode()
    response = client.post(reverse("batch-new"), _batch_data(world) | {"deposit_date": day})
    assert response.status_code == 400
    assert _state(world) == before


@pytest.mark.parametrize("day", EDGE_DATES)
def test_api_refuses_edge_dates_as_before(org, world, day):
    client = client_for(make_key(org, "WRITE"))
    body = {"donor_id": world["donor"].id, "donation_type": "MONETARY", "amount_cents": 100, "donation_date": day,
            "payment_method": "CASH"}
    assert_error(client.post("/api/v1/donations", body, format="json"), 400, "validation_failed", param="donation_date")
    assert_error(client.patch(f"/api/v1/donations/{world['donation'].id}", {"donation_date": day}, format="json"),
                 400, "validation_failed", param="donation_date")


@pytest.mark.parametrize("amount,code", [
    (1e5, "invalid_request"), ("100", "invalid_request"), (True, "invalid_request"), (None, "invalid_request"),
    (10**30, "invalid_request"),  # beyond 64 bits the JSON parser reads a float
    (10**13 + 1, "validation_failed"), (0, "validation_failed"), (-5, "validation_failed"),
])
def test_api_amount_cents_is_a_bounded_integer(org, world, amount, code):
    client = client_for(make_key(org, "WRITE"))
    body = {"donor_id": world["donor"].id, "donation_type": "MONETARY", "amount_cents": amount, "donation_date": DAY.isoformat(),
            "payment_method": "CASH"}
    assert_error(client.post("/api/v1/donations", body, format="json"), 400, code, param="amount_cents")
    assert Donation.objects.filter(organisation=org).count() == 1


def test_api_amount_cents_as_an_exponent_or_a_huge_literal(org, world):
    client = client_for(make_key(org, "WRITE"))
    for literal in ("1e999997", "1e5", "NaN", "Infinity", "9" * 5000):
        raw = ('{"donor_id": "%s", "donation_type": "MONETARY", "amount_cents": %s, "donation_date": "2027-03-15",'
               ' "payment_method": "CASH"}' % (world["donor"].id, literal))
        response, elapsed = fastest(lambda: client.post("/api/v1/donations", raw, content_type="application/json"))
        assert elapsed < 1.0, elapsed
        assert response.status_code == 400, (literal[:20], response.content[:300])
        assert response.json()["error"]["code"] in ("invalid_request", "validation_failed")
    assert Donation.objects.filter(organisation=org).count() == 1


# --- reports at the edges (defect 7) ----------------------------------------------------------------

BIG = "1" + "0" * 30
REPORT_EDGES = [
    ("donations", {"to": "0001-01-01"}, "to"),
    ("donations", {"from": "9999-12-31"}, "from"),
    ("donations", {"from": "0001-01-01", "to": "0001-12-31"}, "from"),
    ("campaign-summary", {"to": "0001-01-01"}, "to"),
    ("reconciliation", {"from": "9999-12-31"}, "from"),
    ("in-kind-register", {"from": "9999-01-01", "to": "9999-12-31"}, "from"),
    ("disclosure-return", {"period": "0000"}, "period"),
    ("disclosure-return", {"period": "9999"}, "period"),
    ("disclosure-return", {"period": "9999-00"}, "period"),
    ("disclosure-return", {"period": "9999-12-31"}, "period"),
    ("disclosure-return", {"period": "0001-01-01"}, "period"),
    ("disclosure-return", {"from": "9999-12-31"}, "from"),
    ("disclosure-return", {"to": "0001-01-01"}, "to"),
    ("donations", {"amount_cents[gte]": BIG}, "amount_cents[gte]"),
    ("donations", {"amount_cents": BIG}, "amount_cents"),
    ("reconciliation", {"amount_cents[lt]": "-" + BIG}, "amount_cents[lt]"),
    ("donations", {"amount_cents[gte]": "１００"}, "amount_cents[gte]"),
]


@pytest.mark.parametrize("name,params,param", REPORT_EDGES, ids=[f"{n}-{'&'.join(f'{k}={v[:12]}' for k, v in p.items())}" for n, p, _ in REPORT_EDGES])
def test_report_edges_are_400_in_the_envelope(read_client, name, params, param):
    assert_error(read_client.get(f"/api/v1/reports/{name}", params), 400, "validation_failed", param=param)


@pytest.mark.parametrize("name", ["amount_cents[gte]", "amount_cents", "amount_cents[lt]"])
def test_list_endpoint_agrees_with_the_report_on_huge_amounts(read_client, name):
    assert_error(read_client.get("/api/v1/donations", {name: BIG}), 400, "validation_failed", param=name)
    response = read_client.get("/api/v1/donations", {name: str(2**63 - 1)})
    assert response.status_code == 200


def test_reports_within_the_range_still_work(read_client):
    response = read_client.get("/api/v1/reports/donations", {"from": "1900-01-01", "to": "2999-12-31", "amount_cents[gte]": "1"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"donation_id,")


@pytest.mark.parametrize("data", [
    {"report": "donations", "date_to": "0001-01-01"},
    {"report": "donations", "date_from": "9999-12-31"},
    {"report": "reconciliation", "date_from": "9999-12-31", "date_to": "9999-12-31"},
    {"report": "disclosure-return", "period": "0000"},
    {"report": "disclosure-return", "period": "9999-12-31"},
])
def test_dashboard_reports_page_shows_the_error(viewer, data):
    client = client_as(viewer)
    response = client.post(reverse("reports"), {"format": "csv", **data})
    assert response.status_code == 400
    assert "between 1900-01-01 and 2999-12-31" in response.content.decode() or "out of range" in response.content.decode()


@pytest.mark.parametrize("name", ["amount_cents[gte]", "amount_cents"])
def test_dashboard_donation_list_with_a_huge_amount_filter_shows_the_error(viewer, name):
    response = client_as(viewer).get(reverse("donations"), {name: BIG})
    assert response.status_code in (200, 400)
    assert "Out of range" in response.content.decode()

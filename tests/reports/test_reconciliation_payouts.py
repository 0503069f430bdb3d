"""The reconciliation report per Stripe payout (issue 16, item 7): finance
matches a payout to its card gifts.

- summary view: card gifts Stripe paid out are one PAYOUT line per payout, dated
  on its arrival date, with gross, fee and net beside the payout amount; the
  other gifts stay on DAY_METHOD / BATCH lines, so every received gift is on
  exactly one line;
- `view=payouts`: each payout arriving in the range, then its gifts one per line;
  the gift lines add up to the payout line, and the net = the payout amount when
  the payout holds only these gifts (`unmatched_cents` 0);
- the same through the API, the dashboard's Reports page and export jobs;
- end to end against localstripe: a card gift paid, a real payout, Stripe's
  `payout.paid` event, and the report agrees with Stripe's balance transactions.

Expected figures are computed here from what the test recorded, not from the SQL."""
from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest
from django.conf import settings
from django.utils import timezone

from donations import services as donation_services
from donations.models import Donation
from organisations.services import organisation_stripe_connect
from payments.models import Payout
from reports import writers
from reports.exporters import REGISTRY
from reports.services import report_spec
from tests.conftest import client_for, make_key, make_org
from tests.reports.conftest import SYSTEM, parse_csv

D = dt.date
RANGE = {"from": "2025-07-01", "to": "2026-06-30"}


def export(organisation, data):
    spec = report_spec(organisation=organisation, name="reconciliation", data=dict(data))
    return parse_csv(b"".join(writers.csv_chunks(spec)))


def card_gift(organisation, donor, amount, day, *, fee, payout=None, status="CONFIRMED"):
    """A card gift as payments records it (fee and net from Stripe's balance transaction)."""
    donation = donation_services.donation_record(
        organisation=organisation, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY", amount_cents=amount,
        donation_date=day, source="STRIPE", status=status, payment_method="CARD",
        card={"stripe_payment_intent_id": "pi_" + secrets.token_hex(8), "stripe_charge_id": "ch_" + secrets.token_hex(8),
              "stripe_balance_transaction_id": "txn_" + secrets.token_hex(8), "fee_cents": fee, "net_cents": amount - fee},
    )
    if payout is not None:
        donation_services.donation_stripe_link(organisation=organisation, donation_ids=[donation.id],
                                               stripe_payout_id=payout.payout_id)
    return donation


def payout_row(organisation, amount, arrival, payout_id=None):
    # As payments._on_payout_paid keeps it for each organisation a Stripe payout touches.
    return Payout.objects.create(organisation=organisation, payout_id=payout_id or "po_" + secrets.token_hex(8),
                                 amount_cents=amount, currency="AUD", arrival_date=arrival, status="paid",
                                 paid_at=timezone.now())


@pytest.fixture
def ledger(db):
    org, other = make_org("Payouts"), make_org("Payouts Other")
    donor = donation_services.donor_create(organisation=org, actor=SYSTEM, email="ada@example.org", first_name="Ada",
                                           last_name="Lovelace")
    other_donor = donation_services.donor_create(organisation=other, actor=SYSTEM, email="leak@example.org",
                                                 first_name="Leak")
    # Payout 1: exactly two gifts (net 9,695 + 4,883 = 14,578).
    p1 = payout_row(org, 14_578, D(2025, 9, 3))
    g1 = card_gift(org, donor, 10_000, D(2025, 9, 1), fee=305, payout=p1)
    g2 = card_gift(org, donor, 5_000, D(2025, 9, 1), fee=117, payout=p1)
    # Payout 2: one gift; the payout is 1,000 short of its net (e.g. a refund of an older gift paid back out of it).
    p2 = payout_row(org, 19_000 - 363 - 1_000, D(2025, 10, 2))
    g3 = card_gift(org, donor, 19_000, D(2025, 9, 30), fee=363, payout=p2)
    # A gift of June paid out in July: on the July payout, outside FY 2024-25.
    p3 = payout_row(org, 2_000 - 65, D(2025, 7, 2))
    g4 = card_gift(org, donor, 2_000, D(2025, 6, 30), fee=65, payout=p3)
    # A card gift not paid out yet, and a cheque: DAY_METHOD lines.
    g5 = card_gift(org, donor, 7_000, D(2025, 9, 1), fee=153)
    g6 = donation_services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                           amount_cents=4_400, donation_date=D(2025, 9, 1), payment_method="CHEQUE")
    # The same platform payout touched another organisation: its own row and gifts, never ours.
    p1_other = payout_row(other, 14_578, D(2025, 9, 3), payout_id=p1.payout_id)
    card_gift(other, other_donor, 3_333, D(2025, 9, 1), fee=88, payout=p1_other)
    return {"org": org, "other": other, "payouts": (p1, p2, p3), "gifts": (g1, g2, g3, g4, g5, g6)}


def test_summary_has_one_payout_line_per_payout_and_every_gift_once(ledger):
    org = ledger["org"]
    p1, p2, p3 = ledger["payouts"]
    g1, g2, g3, g4, g5, g6 = ledger["gifts"]
    header, rows = export(org, RANGE)
    assert header == REGISTRY["reconciliation"].column_names
    payouts = {r["payout_id"]: r for r in rows if r["line_type"] == "PAYOUT"}
    assert set(payouts) == {p1.payout_id, p2.payout_id, p3.payout_id}
    line = payouts[p1.payout_id]
    assert (line["date"], line["payment_method"], line["currency"]) == ("2025-09-03", "CARD", "AUD")
    assert (int(line["gifts_count"]), int(line["total_cents"]), int(line["fee_cents"]), int(line["net_cents"])) == (
        2, 15_000, 422, 14_578)
    assert (int(line["payout_amount_cents"]), line["payout_amount_dollars"]) == (14_578, "145.78")
    assert (int(line["unmatched_cents"]), line["unmatched_dollars"]) == (0, "0.00")
    line = payouts[p2.payout_id]
    assert (int(line["net_cents"]), int(line["payout_amount_cents"]), int(line["unmatched_cents"])) == (18_637, 17_637, -1_000)
    assert line["unmatched_dollars"] == "-10.00"
    assert payouts[p3.payout_id]["date"] == "2025-07-02"  # the June gift, on its July payout
    # Gifts paid out are not on the day lines; the unpaid card gift and the cheque are.
    days = {(r["date"], r["payment_method"]): r for r in rows if r["line_type"] == "DAY_METHOD"}
    assert set(days) == {("2025-09-01", "CARD"), ("2025-09-01", "CHEQUE")}
    card = days[("2025-09-01", "CARD")]
    assert (int(card["gifts_count"]), int(card["total_cents"]), int(card["fee_cents"]), int(card["net_cents"])) == (
        1, 7_000, 153, 6_847)
    assert card["payout_id"] == "" and card["unmatched_cents"] == ""
    cheque = days[("2025-09-01", "CHEQUE")]
    assert (int(cheque["total_cents"]), cheque["fee_cents"], cheque["net_cents"]) == (4_400, "", "")
    # Every received gift of the range on exactly one line (g4 is dated June but paid out in July: in).
    assert sum(int(r["gifts_count"]) for r in rows) == 6
    assert sum(int(r["total_cents"]) for r in rows) == sum(g.amount_cents for g in (g1, g2, g3, g4, g5, g6))
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)


def test_per_payout_view_lists_each_payouts_gifts_and_adds_up(ledger):
    org = ledger["org"]
    p1, p2, p3 = ledger["payouts"]
    g1, g2, g3, g4, _g5, _g6 = ledger["gifts"]
    header, rows = export(org, {**RANGE, "view": "payouts"})
    assert header == REGISTRY["reconciliation"].column_names
    assert [(r["line_type"], r["payout_id"]) for r in rows] == [
        ("PAYOUT", p3.payout_id), ("PAYOUT_GIFT", p3.payout_id),
        ("PAYOUT", p1.payout_id), ("PAYOUT_GIFT", p1.payout_id), ("PAYOUT_GIFT", p1.payout_id),
        ("PAYOUT", p2.payout_id), ("PAYOUT_GIFT", p2.payout_id),
    ]
    gifts = {r["donation_id"]: r for r in rows if r["line_type"] == "PAYOUT_GIFT"}
    assert set(gifts) == {g1.id, g2.id, g3.id, g4.id}  # the unpaid card gift, the cheque and the other org's: not here
    assert (gifts[g1.id]["total_cents"], gifts[g1.id]["fee_cents"], gifts[g1.id]["net_cents"], gifts[g1.id]["net_dollars"]) == (
        "10000", "305", "9695", "96.95")
    assert (gifts[g4.id]["donation_date"], gifts[g4.id]["date"]) == ("2025-06-30", "2025-07-02")
    assert gifts[g1.id]["payout_amount_cents"] == "" and gifts[g1.id]["unmatched_cents"] == ""
    for payout in (p1, p2, p3):
        line = next(r for r in rows if r["line_type"] == "PAYOUT" and r["payout_id"] == payout.payout_id)
        mine = [r for r in rows if r["line_type"] == "PAYOUT_GIFT" and r["payout_id"] == payout.payout_id]
        assert int(line["gifts_count"]) == len(mine)
        for column in ("total_cents", "fee_cents", "net_cents"):
            assert int(line[column]) == sum(int(r[column]) for r in mine), (payout.payout_id, column)
        assert int(line["payout_amount_cents"]) == payout.amount_cents
        assert int(line["unmatched_cents"]) == payout.amount_cents - int(line["net_cents"])
    p1_line = next(r for r in rows if r["line_type"] == "PAYOUT" and r["payout_id"] == p1.payout_id)
    assert int(p1_line["net_cents"]) == p1.amount_cents and p1_line["unmatched_cents"] == "0"


def test_payouts_by_arrival_date_and_filters(ledger):
    org = ledger["org"]
    p1, p2, p3 = ledger["payouts"]
    _, rows = export(org, {"from": "2025-09-01", "to": "2025-09-30", "view": "payouts"})
    assert {r["payout_id"] for r in rows} == {p1.payout_id}  # p2 arrives in October, p3 in July
    _, rows = export(org, {"from": "2025-01-01", "to": "2025-06-30"})
    assert not [r for r in rows if r["line_type"] == "PAYOUT"]  # g4 (30 June) arrives on 2 July
    assert sum(int(r["total_cents"]) for r in rows) == 0
    # A payout with no gift of the filter still shows, and says what is unmatched.
    _, rows = export(org, {**RANGE, "view": "payouts", "payment_method": "CHEQUE"})
    lines = [r for r in rows if r["line_type"] == "PAYOUT"]
    assert {r["payout_id"] for r in lines} == {p1.payout_id, p2.payout_id, p3.payout_id}
    assert all(int(r["gifts_count"]) == 0 and int(r["total_cents"]) == 0 and r["net_cents"] == "" for r in lines)
    assert {int(r["unmatched_cents"]) for r in lines} == {p.amount_cents for p in (p1, p2, p3)}


def test_another_organisation_and_the_sandbox_never_show(ledger):
    org, other = ledger["org"], ledger["other"]
    p1 = ledger["payouts"][0]
    for view in ("summary", "payouts"):
        _, rows = export(other, {**RANGE, "view": view})
        line = next(r for r in rows if r["line_type"] == "PAYOUT")
        assert (line["payout_id"], int(line["gifts_count"]), int(line["total_cents"])) == (p1.payout_id, 1, 3_333)
        _, rows = export(org.sandbox, {**RANGE, "view": view})
        assert rows == []
    _, rows = export(org, {**RANGE, "view": "payouts"})
    assert int(next(r for r in rows if r["payout_id"] == p1.payout_id)["gifts_count"]) == 2


def test_view_is_checked_and_kept_by_export_jobs(ledger):
    org = ledger["org"]
    from together.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        report_spec(organisation=org, name="reconciliation", data={"view": "daily"})
    assert caught.value.param == "view"
    spec = report_spec(organisation=org, name="reconciliation", data={**RANGE, "view": "payouts"})
    assert spec.params["view"] == "payouts"
    assert spec.file_name("csv").endswith("_reconciliation_payouts_2025-07-01_2026-06-30.csv")
    again = report_spec(organisation=org, name="reconciliation", data=spec.params)
    assert again.view == "payouts" and again.params == spec.params
    summary = report_spec(organisation=org, name="reconciliation", data=RANGE)
    assert "view" not in summary.params and summary.file_name("csv").endswith("_reconciliation_2025-07-01_2026-06-30.csv")


def test_api_and_openapi(ledger):
    org = ledger["org"]
    api = client_for(make_key(org, "READ"))
    response = api.get("/api/v1/reports/reconciliation", {**RANGE, "view": "payouts"})
    assert response.status_code == 200
    _, rows = parse_csv(b"".join(response.streaming_content))
    assert {r["line_type"] for r in rows} == {"PAYOUT", "PAYOUT_GIFT"}
    response = api.get("/api/v1/reports/reconciliation", {**RANGE, "view": "weekly"})
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("validation_failed", "view")
    document = client_for(None).get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/reports/reconciliation"]["get"]
    view = next(p for p in operation["parameters"] if p["name"] == "view")
    assert view["schema"]["enum"] == ["summary", "payouts"]
    assert "`PAYOUT_GIFT`" in operation["description"] and "`unmatched_cents`" in operation["description"]


def test_dashboard_reports_page_downloads_the_per_payout_view(ledger, client):
    from organisations.models import Role
    from organisations.services import membership_set, user_get_or_create

    org = ledger["org"]
    user = user_get_or_create(email=f"finance-{secrets.token_hex(3)}@example.org", password="correct-horse-battery")
    membership_set(organisation=org, user=user, role=Role.VIEWER)
    client.force_login(user)
    page = client.get("/reports/")
    assert page.status_code == 200 and b"Per Stripe payout" in page.content
    response = client.post("/reports/", {"report": "reconciliation", "format": "csv", "date_from": RANGE["from"],
                                         "date_to": RANGE["to"], "view": "payouts"})
    assert response.status_code == 200, response.content[:500]
    assert "_reconciliation_payouts_" in response["Content-Disposition"]
    _, rows = parse_csv(b"".join(response.streaming_content))
    assert [r["line_type"] for r in rows].count("PAYOUT_GIFT") == 4


# --- end to end: localstripe ---------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_real_payout_matches_its_card_gift(localstripe):
    """A card gift paid through localstripe, a payout of the platform's balance,
    Stripe's payout.paid event; the per-payout view agrees with the payout's
    balance transactions as Stripe lists them."""
    import requests

    from engage.services import form_create
    from payments.models import PaymentKind
    from payments.services import PartSpec, payment_start, payment_sync, stripe_event_receive
    from tests.support.stripe import client as stripe_client
    from tests.support.stripe import event_payload, pay_intent, signature_header

    org = make_org("Payout E2E")
    organisation_stripe_connect(organisation=org, actor=SYSTEM, account_id="acct_" + secrets.token_hex(8))
    form = form_create(organisation=org, actor=SYSTEM, name="Main", title="Give", slug=f"payout-e2e-{secrets.token_hex(4)}",
                       suggested_amounts_cents=[5_000], status="ACTIVE")
    payment = payment_start(organisation=org, kind=PaymentKind.FORM, attempt_key="bench-" + secrets.token_hex(12),
                            donor_details={"email": "payout@example.org", "first_name": "Pay", "last_name": "Out",
                                           "address_line1": "1 Main St", "suburb": "Carlton", "state": "VIC",
                                           "postcode": "3053", "country": "AU"},
                            parts=[PartSpec(recipient_organisation=org, amount_cents=5_000)], form=form)
    assert "paymentIntent" in pay_intent(payment.client_secret, publishable_key=settings.STRIPE_PUBLISHABLE_KEY)
    payment = payment_sync(payment_intent_id=payment.payment_intent_id)
    donation = Donation.objects.for_organisation(org).get(pk=payment.parts.get().donation_id)
    assert (donation.status, donation.fee_cents, donation.net_cents) == ("CONFIRMED", 118, 4_882)  # 1.75% + 30c

    # The platform pays out its available balance. Other test processes share this
    # localstripe: whichever payout took our charge is the one to match.
    stripe = stripe_client(settings.STRIPE_SECRET_KEY)
    try:
        stripe.v1.payouts.create(params={"currency": "aud"})
    except Exception:  # noqa: BLE001 - another process's payout may have taken the balance first
        pass
    base = settings.STRIPE_API_BASE.rstrip("/")
    auth = (settings.STRIPE_SECRET_KEY, "")
    payouts = requests.get(f"{base}/v1/payouts", params={"limit": 100}, auth=auth, timeout=10).json()["data"]
    found = None
    def paid_out(payout_id: str) -> list[dict]:
        """Every balance transaction of the payout, page after page (a shared
        localstripe's payout may hold hundreds of other tests' charges)."""
        out, params = [], {"payout": payout_id, "limit": 100}
        while True:
            page = requests.get(f"{base}/v1/balance_transactions", params=params, auth=auth, timeout=10).json()
            out += page["data"]
            if not page["has_more"] or not page["data"]:
                return out
            params["starting_after"] = page["data"][-1]["id"]

    for candidate in payouts:
        txns = paid_out(candidate["id"])
        if donation.stripe_balance_transaction_id in {t["id"] for t in txns}:
            found = candidate, txns
            break
    assert found is not None, "no localstripe payout holds the gift's balance transaction"
    stripe_payout, txns = found
    assert stripe_payout["amount"] == sum(t["net"] for t in txns)

    payload = json.dumps(event_payload("payout.paid", stripe_payout)).encode()
    stripe_event_receive(payload=payload, sig_header=signature_header(payload))
    donation.refresh_from_db()
    assert donation.stripe_payout_id == stripe_payout["id"]

    arrival = dt.datetime.fromtimestamp(stripe_payout["arrival_date"], tz=dt.timezone.utc).date()
    _, rows = export(org, {"from": (arrival - dt.timedelta(days=10)).isoformat(), "to": arrival.isoformat(),
                           "view": "payouts"})
    line = next(r for r in rows if r["line_type"] == "PAYOUT")
    gift = next(r for r in rows if r["line_type"] == "PAYOUT_GIFT")
    ours = next(t for t in txns if t["id"] == donation.stripe_balance_transaction_id)
    assert (line["payout_id"], line["date"], int(line["payout_amount_cents"])) == (
        stripe_payout["id"], arrival.isoformat(), stripe_payout["amount"])
    assert (gift["donation_id"], int(gift["total_cents"]), int(gift["fee_cents"]), int(gift["net_cents"])) == (
        donation.id, ours["amount"], ours["fee"], ours["net"])
    # What the gift does not explain is exactly the payout's other balance transactions (others' gifts, refunds).
    assert int(line["unmatched_cents"]) == sum(t["net"] for t in txns if t["id"] != ours["id"])

"""Never twice: two billing runs at once, and a run SIGKILLed between Stripe's charge
and the books, charge each plan's period once (counted in Stripe's PaymentIntents)."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from donations.models import Donation
from payments import billing
from payments.models import Payment, PaymentStatus
from tests.recurring.helpers import at, card_plan, connect, make_donor, plan_intents

pytestmark = pytest.mark.usefixtures("localstripe")
ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2027, 6, 1)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_billing_runs_charge_each_due_plan_once(org):
    connect(org)
    plans = [card_plan(org, make_donor(org, email=f"both{i}@example.com"), amount_cents=1000 + i, start=DAY)
             for i in range(6)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(billing.billing_run(now=at(DAY), batch_size=2))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(r.get("charged", 0) for r in results) == 6, results
    for plan in plans:
        intents = plan_intents(plan)
        assert len(intents) == 1 and intents[0]["status"] == "succeeded", (plan.id, intents)
        assert Donation.objects.filter(organisation=org, recurring_plan_id=plan.id, status="CONFIRMED").count() == 1
        plan.refresh_from_db()
        assert (plan.payments_made, plan.next_bill_date) == (1, dt.date(2027, 7, 1))
    # And again, both at once: nothing is due.
    assert billing.billing_run(now=at(DAY, 16)) == {}


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_after_stripe_charged_and_restarted_charges_nothing_twice(org, tmp_path):
    connect(org)
    plan = card_plan(org, make_donor(org, email="killed@example.com"), amount_cents=4200, start=DAY)
    signal_file = tmp_path / "charged"
    env = {**os.environ, "DATABASE_URL": _database_url()}
    env.pop("TEST_DATABASE_NAME", None)
    worker = subprocess.Popen([sys.executable, str(ROOT / "tests" / "recurring" / "billing_worker.py"), str(signal_file),
                               at(DAY).isoformat()], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not signal_file.exists():
            assert worker.poll() is None, worker.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the worker never reached Stripe"
            time.sleep(0.1)
        intent_id, backend_pid = signal_file.read_text().split()
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    # The killed run's transaction ends when its backend notices the closed socket; until then it holds the
    # plan's row lock and a run skips the plan (SKIP LOCKED). CI once restarted in that gap and charged nothing.
    deadline = time.monotonic() + 30
    while _backend_alive(int(backend_pid)):
        assert time.monotonic() < deadline, "the killed worker's backend outlived it by 30 s"
        time.sleep(0.05)
    # Stripe took the money; the killed run's transaction is gone: nothing recorded, the plan still due.
    intents = plan_intents(plan)
    assert [(i["id"], i["status"]) for i in intents] == [(intent_id, "succeeded")]
    payment = Payment.objects.get(plan=plan)
    assert payment.payment_intent_id is None and payment.status == PaymentStatus.REQUIRES_PAYMENT
    assert not Donation.objects.filter(organisation=org, recurring_plan_id=plan.id).exists()
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date) == (0, DAY)
    # Restarted: the next run finds the intent Stripe made and records it, once.
    assert billing.billing_run(now=at(DAY, 11)) == {"charged": 1}
    assert [i["id"] for i in plan_intents(plan)] == [intent_id]
    gift = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert (gift.status, gift.amount_cents, gift.stripe_payment_intent_id, gift.recurring_period) == (
        "CONFIRMED", 4200, intent_id, DAY)
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date) == (1, dt.date(2027, 7, 1))
    assert billing.billing_run(now=at(DAY, 12)) == {}
    assert len(plan_intents(plan)) == 1


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return bool(cursor.fetchone()[0])

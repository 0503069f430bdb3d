"""A gift in flight while its code is remapped (or the default jurisdiction
changed) must not keep the old mapping after the background recompute has run:
the remap waits for gifts that already read the mapping."""
from __future__ import annotations

import threading

import pytest
from django.db import connection

from compliance import rules
from compliance import services as compliance
from compliance.models import ComplianceSettings, RevenueCode
from donations.models import Donation
from tests.compliance.helpers import D, SYSTEM, code, gift
from tests.support.api import make_donor
from tests.conftest import make_org


def _race(monkeypatch, record, change):
    """Pause `record` (a gift) right after it resolved its jurisdiction; run
    `change` (a remap, committed, recompute run eagerly on commit) meanwhile;
    let the gift go once the change is done or after 3 s, whichever first."""
    resolved, release = threading.Event(), threading.Event()
    real = rules.rules_in_force

    def paused_rules_in_force(jurisdiction, day, *args):
        if threading.current_thread().name == "gift":
            resolved.set()
            release.wait(10)
        return real(jurisdiction, day, *args)

    monkeypatch.setattr(rules, "rules_in_force", paused_rules_in_force)
    errors = []

    def run(fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    gift_thread = threading.Thread(target=run, args=(record,), name="gift")
    gift_thread.start()
    assert resolved.wait(20)
    change_thread = threading.Thread(target=run, args=(change,), name="change")
    change_thread.start()
    change_thread.join(3)
    release.set()
    gift_thread.join(30)
    change_thread.join(30)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_a_gift_in_flight_during_a_remap_ends_up_under_the_new_mapping(monkeypatch, eager_celery):
    org = make_org("Race")
    rc = code(org, "RACE", "UNREGULATED")
    donor = make_donor(org)
    compliance.compliance_settings_get(organisation=org)  # exists before the race, as in any organisation that has gifts

    _race(monkeypatch,
          lambda: gift(org, donor, 600_000, D(2027, 2, 1), revenue_code="race"),
          lambda: compliance.revenue_code_update(organisation=org, actor=SYSTEM, revenue_code_id=rc.id, jurisdiction="FEDERAL"))

    assert RevenueCode.objects.get(pk=rc.id).jurisdiction == "FEDERAL"
    assert list(Donation.objects.filter(donor=donor).values_list("jurisdiction", flat=True)) == ["FEDERAL"]
    assert donor.disclosure_obligations.filter(status="OPEN").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_code_less_gift_in_flight_during_a_default_change_ends_up_under_the_new_default(monkeypatch, eager_celery):
    org = make_org("Race")
    donor = make_donor(org)
    compliance.compliance_settings_get(organisation=org)

    _race(monkeypatch,
          lambda: gift(org, donor, 600_000, D(2027, 2, 1)),
          lambda: compliance.compliance_settings_update(organisation=org, actor=SYSTEM, default_jurisdiction="UNREGULATED"))

    assert ComplianceSettings.objects.get(organisation=org).default_jurisdiction == "UNREGULATED"
    assert list(Donation.objects.filter(donor=donor).values_list("jurisdiction", flat=True)) == ["UNREGULATED"]
    assert donor.disclosure_obligations.filter(status="OPEN").count() == 0

"""The per-day rollup (donations.models.DailyRollup) never drifts from the ledger.

Hypothesis drives random sequences of record / update (money, date) / void /
refund / merge through the services (gifts moving between campaigns too), then compares every rollup row of the
organisation with a fresh GROUP BY over its gifts (compliance.rules' COUNTED and
counted_sum). The rebuild (migration backfill, seed_bench) gives the same rows."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compliance.rules import COUNTED, counted_sum
from donations import services
from donations.models import DailyRollup, Donation, Donor, Status
from donations.rollups import rollup_compact, rollup_rebuild
from donations.selectors import campaign_rollups
from together.actors import Actor
from together.exceptions import ApplicationError

ACTOR = Actor.system("tests")
DAYS = [dt.date(2025, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 7, 2), dt.date(2026, 1, 15)]


def ledger(org) -> dict:
    rows = (Donation.objects.for_organisation(org).filter(COUNTED).order_by()
            .annotate(plan=ExpressionWrapper(Q(recurring_plan_id__isnull=False), output_field=BooleanField()))
            .values("donation_date", "donation_type", "plan", "campaign_id").annotate(cents=counted_sum(), n=Count("*")))
    return {(r["donation_date"], r["donation_type"], r["plan"], r["campaign_id"]): (r["cents"], r["n"]) for r in rows}


def rollup(org) -> dict:
    """Each key's rows summed (rollup_apply writes deltas; readers SUM), keys netting to nothing left out."""
    out: dict = {}
    for r in DailyRollup.objects.for_organisation(org):
        key = (r.day, r.donation_type, r.recurring, r.campaign_id)
        cents, gifts = out.get(key, (0, 0))
        out[key] = (cents + r.counted_cents, gifts + r.gifts)
    return {k: v for k, v in out.items() if v != (0, 0)}


def _record(org, donor, kind, amount, day, campaign=None):
    extra = ({"in_kind_category": "GOODS", "in_kind_description": "Printing"} if kind == "IN_KIND" else {})
    return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type=kind,
                                    amount_cents=amount, donation_date=day, campaign_id=campaign.id if campaign else None, **extra)


def campaign_figures(org, campaigns) -> dict:
    """campaign_rollups (rollup rows and the donors index) against a fresh count over the gifts."""
    fresh = {c.id: Donation.objects.for_organisation(org).filter(COUNTED, campaign_id=c.id)
             .aggregate(raised_cents=counted_sum(), donations_count=Count("id"), donors_count=Count("donor_id", distinct=True))
             for c in campaigns}
    return {k: v for k, v in fresh.items() if v["donations_count"]}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("record"), st.integers(0, 2), st.sampled_from(["MONETARY", "IN_KIND"]),
                  st.integers(1, 500_000), st.sampled_from(DAYS), st.integers(0, 2)),
        st.tuples(st.just("update"), st.integers(0, 50), st.integers(1, 500_000), st.sampled_from(DAYS), st.integers(0, 2)),
        st.tuples(st.just("void"), st.integers(0, 50)),
        st.tuples(st.just("refund"), st.integers(0, 50)),
        st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2)),
    ),
    min_size=1, max_size=12,
)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_rollup_equals_ledger_after_any_sequence(org, ops):
    donors = [services.donor_create(organisation=org, actor=ACTOR, first_name="Ann", last_name=f"Lee {i}") for i in range(3)]
    campaigns = [None] + [services.campaign_create(organisation=org, actor=ACTOR, name=f"Appeal {i}") for i in range(2)]
    gifts: list[Donation] = []
    for op in ops:
        try:
            if op[0] == "record":
                gifts.append(_record(org, donors[op[1]], op[2], op[3], op[4], campaigns[op[5]]))
            elif op[0] == "merge":
                survivor, duplicate = donors[op[1]], donors[op[2]]
                if Donor.objects.filter(pk=duplicate.pk).exists() and Donor.objects.filter(pk=survivor.pk).exists():
                    services.donor_merge(organisation=org, actor=ACTOR, survivor_id=survivor.id, duplicate_id=duplicate.id)
                    donors = [survivor if d.pk == duplicate.pk else d for d in donors]
            elif gifts:
                gift = gifts[op[1] % len(gifts)]
                if op[0] == "update":
                    services.donation_update(organisation=org, actor=ACTOR, donation_id=gift.id, amount_cents=op[2], donation_date=op[3],
                                             campaign_id=campaigns[op[4]].id if campaigns[op[4]] else None)
                elif op[0] == "void":
                    services.donation_void(organisation=org, actor=ACTOR, donation_id=gift.id, reason="entered twice")
                else:
                    gift.refresh_from_db()
                    services.donation_refund(organisation=org, actor=ACTOR, donation_id=gift.id,
                                             refund_date=max(gift.donation_date, DAYS[-1]), reason="returned")
        except ApplicationError:
            pass  # a refusal (a voided gift edited, a cap) changes nothing: the comparison still holds
        assert rollup(org) == ledger(org), op
    assert rollup(org) == ledger(org)
    real = [c for c in campaigns if c]
    rollups = campaign_rollups(organisation=org, campaign_ids=[c.id for c in real])
    assert {k: {f: v[f] for f in ("raised_cents", "donations_count", "donors_count")} for k, v in rollups.items()} == \
        campaign_figures(org, real)
    before = rollup(org)
    rollup_compact()
    assert rollup(org) == before
    keys = DailyRollup.objects.for_organisation(org).values_list("day", "donation_type", "recurring", "campaign_id")
    assert len(keys) == len(set(keys)) == len(before)  # one row a key, none netting to nothing
    rollup_rebuild(organisation_id=org.id)
    assert rollup(org) == before


@pytest.mark.django_db
def test_rollup_counts_only_what_is_kept(org):
    donor = services.donor_create(organisation=org, actor=ACTOR, first_name="Bo", last_name="Ng")
    kept = _record(org, donor, "MONETARY", 10_000, DAYS[1])
    _record(org, donor, "IN_KIND", 2_500, DAYS[1])
    gone = _record(org, donor, "MONETARY", 7_000, DAYS[1])
    services.donation_void(organisation=org, actor=ACTOR, donation_id=gone.id, reason="typo")
    assert rollup(org) == {(DAYS[1], "MONETARY", False, None): (10_000, 1), (DAYS[1], "IN_KIND", False, None): (2_500, 1)}
    services.donation_update(organisation=org, actor=ACTOR, donation_id=kept.id, donation_date=DAYS[2])
    assert rollup(org) == {(DAYS[2], "MONETARY", False, None): (10_000, 1), (DAYS[1], "IN_KIND", False, None): (2_500, 1)}
    assert Donation.objects.for_organisation(org).filter(status=Status.VOIDED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_gifts_of_one_day_each_land_in_the_rollup(org):
    """Gifts of one organisation and day, recorded at once from threads (each its own
    connection and transaction), never wait on each other for the rollup and never
    lose a delta; a compaction running among them folds what was committed."""
    import threading

    from django.db import connection

    donors = [services.donor_create(organisation=org, actor=ACTOR, first_name="Cy", last_name=f"Po {i}") for i in range(8)]
    errors: list = []
    barrier = threading.Barrier(len(donors) + 1)

    def give(donor):
        try:
            barrier.wait()
            for n in range(5):
                _record(org, donor, "MONETARY", 1_000 + n, DAYS[1])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    def compact():
        try:
            barrier.wait()
            for _ in range(5):
                rollup_compact()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=give, args=(d,)) for d in donors] + [threading.Thread(target=compact)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rollup(org) == ledger(org) == {(DAYS[1], "MONETARY", False, None): (8 * (5_000 + 10), 40)}
    rollup_compact()
    assert DailyRollup.objects.for_organisation(org).count() == 1

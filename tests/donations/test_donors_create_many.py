"""donors_create_many: donor_create's rules for a batch (donor_create is it with one
donor). Each donor is refused exactly as donor_create would refuse it at that point
of the batch (an earlier donor of the batch holds its email as if stored), a refused
donor writes nothing, the rest are written with one set of statements, and each
created donor has its one audit entry and `donor.created` event."""
from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations import services
from donations.custom_fields import custom_field_create
from donations.models import Donor
from donations.selectors import donor_snapshot
from organisations.models import AuditEntry
from tests.conftest import make_org
from together.actors import Actor
from together.exceptions import ApplicationError, Conflict, ValidationFailed
from webhooks.models import Event

ACTOR = Actor.system("donor batch tests")


def _create_many(org, donors):
    return services.donors_create_many(organisation=org, actor=ACTOR, donors=donors)


def _setup(org) -> Donor:
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONOR", key="tier", label="Tier", field_type="CHOICE",
                        choices=["Gold", "Silver"])
    return services.donor_create(organisation=org, actor=ACTOR, email="held@example.org")


def _outcome(result_donor, error, names: dict) -> tuple:
    """A donor's outcome with ids named (two organisations' ids differ)."""
    if error is None:
        names[result_donor.id] = result_donor.first_name or result_donor.email or result_donor.organisation_name
        return ("created", names[result_donor.id])
    text = error.message
    for donor_id, name in names.items():
        text = text.replace(donor_id, f"<{name}>")
    extra = {k: names.get(v, v) for k, v in error.extra.items()}
    return (type(error).__name__, error.param, text, extra)


@pytest.mark.django_db
def test_each_donor_is_refused_as_donor_create_would_refuse_it(org, other_org):
    donors = [
        {"first_name": "Ann", "email": "ann@example.org"},                               # 0 created
        {"first_name": "Ann again", "email": " ANN@Example.org "},                        # 1 the batch's 0 holds it
        {"first_name": "Held", "email": "Held@example.org"},                              # 2 stored before the batch
        {"notes": "nobody in particular"},                                               # 3 no identity
        {"email": "tier@example.org", "custom_fields": {"tier": "Platinum"}},             # 4 not a choice
        {"email": "not-an-address"},                                                     # 5 bad email
        {"first_name": "Cy", "email": "tier@example.org", "custom_fields": {"tier": "Gold"}},  # 6 4's email is free
        {"first_name": "Emp", "employer_id": "cmnothere"},                               # 7 unknown employer
        {"first_name": "Dee", "colour": "blue"},                                         # 8 unknown field
        {"organisation_name": "Acme", "donor_type": "ORGANISATION", "custom_fields": {"tier": "Silver"}},  # 9 created
        {"first_name": "Cy's twin", "email": "TIER@example.org"},                         # 10 6 holds it
    ]
    held = _setup(org)
    results = _create_many(org, donors)
    created = {i for i, r in enumerate(results) if r.donor is not None}
    assert created == {0, 6, 9}
    assert all((r.donor is None) != (r.error is None) for r in results)
    ann, cy = results[0].donor, results[6].donor
    assert (ann.email, cy.custom_fields, results[9].donor.custom_fields) == ("ann@example.org", {"tier": "Gold"}, {"tier": "Silver"})
    errors = {i: results[i].error for i in range(len(donors)) if i not in created}
    assert isinstance(errors[1], Conflict) and errors[1].param == "email" and errors[1].extra == {"existing_id": ann.id}
    assert isinstance(errors[2], Conflict) and errors[2].extra == {"existing_id": held.id}
    assert isinstance(errors[10], Conflict) and errors[10].extra == {"existing_id": cy.id}
    assert isinstance(errors[3], ValidationFailed) and errors[3].param == "email"
    assert (errors[4].param, errors[5].param, errors[7].param, errors[8].param) == (
        "custom_fields.tier", "email", "employer_id", "colour")
    assert errors[7].extra == {"reason": "unknown_employer"}
    # A refused donor wrote nothing.
    assert set(Donor.objects.for_organisation(org).values_list("id", flat=True)) == {held.id, ann.id, cy.id, results[9].donor.id}
    # The same donors through donor_create one by one, from the same start: the same outcome for each.
    names = {held.id: "held"}
    batch = [_outcome(r.donor, r.error, names) for r in results]
    other_held = _setup(other_org)
    names = {other_held.id: "held"}
    one_by_one = []
    for fields in donors:
        try:
            one_by_one.append(_outcome(services.donor_create(organisation=other_org, actor=ACTOR, **fields), None, names))
        except ApplicationError as exc:
            one_by_one.append(_outcome(None, exc, names))
    assert batch == one_by_one


@pytest.mark.django_db
def test_a_required_custom_field_and_the_employer_rule_hold_per_donor(org):
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONOR", key="region", label="Region", field_type="TEXT",
                        required=True)
    acme = services.donor_create(organisation=org, actor=ACTOR, organisation_name="Acme", donor_type="ORGANISATION",
                                 custom_fields={"region": "North"})
    donors = [
        {"first_name": "No region"},
        {"first_name": "Worker", "employer_id": acme.id, "custom_fields": {"region": "South"}},
        {"organisation_name": "Sub", "donor_type": "ORGANISATION", "employer_id": acme.id, "custom_fields": {"region": "x"}},
    ]
    results = _create_many(org, donors)
    assert (results[0].error.param, results[0].error.message) == ("custom_fields.region", "Region is required.")
    assert results[1].donor.employer_id == acme.id
    assert (results[2].error.param, results[2].error.extra) == ("employer_id", {"reason": "employer_for_individuals"})


@pytest.mark.django_db
def test_one_audit_entry_and_event_per_donor_with_the_donors_snapshot(org):
    donors = [{"first_name": f"D{n}", "email": f"d{n}@example.org", "metadata": {"n": str(n)}} for n in range(3)]
    donors.insert(1, {"email": "d0@example.org"})  # refused: writes no event
    results = _create_many(org, donors)
    made = [r.donor for r in results if r.donor is not None]
    assert [d.first_name for d in made] == ["D0", "D1", "D2"]
    events = list(Event.objects.filter(organisation=org, type="donor.created").order_by("created_at", "id"))
    assert len(events) == 3
    by_id = {e.data["id"]: e.data for e in events}
    assert set(by_id) == {d.id for d in made}
    for donor in made:
        assert by_id[donor.id] == donor_snapshot(donor_id=donor.id)  # the shape donor_create's event has always had
        assert by_id[donor.id]["object"] == "donor" and by_id[donor.id]["tags"] == []
        assert donor.tags == [] and donor.donations_total_cents == 0  # the instance knows what the row holds
    audits = AuditEntry.objects.filter(organisation=org, action="donor.created")
    assert sorted(audits.values_list("object_id", flat=True)) == sorted(d.id for d in made)
    assert all(a.after == by_id[a.object_id] and a.actor_label == ACTOR.label for a in audits)


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_whatever_its_size(org):
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONOR", key="tier", label="Tier", field_type="TEXT")

    def statements(n: int, start: int) -> int:
        donors = [{"first_name": f"P{i}", "email": f"p{i}@example.org", "custom_fields": {"tier": "x"}}
                  for i in range(start, start + n)]
        with CaptureQueriesContext(connection) as queries:
            results = _create_many(org, donors)
        assert all(r.donor is not None for r in results)
        return len(queries)

    statements(1, 1000)  # the custom fields' definitions come from the cache after this
    assert statements(2, 0) == statements(60, 100) <= 7
    assert Donor.objects.for_organisation(org).count() == 63


def _race(first, second):
    """Run `first` until its donor is inserted (not committed), then `second` until it has
    probed the emails (finding nothing), then let both finish: the second's INSERT meets
    the first's row in the unique index and waits for its commit."""
    first_inserted, second_probed = threading.Event(), threading.Event()
    real_events, real_definitions = services.events_record, services.custom_field_definitions
    out: dict = {}

    def events_record(**kwargs):
        if threading.current_thread().name == "first":
            first_inserted.set()
            assert second_probed.wait(20)
        return real_events(**kwargs)

    def definitions(**kwargs):
        if threading.current_thread().name == "second":
            second_probed.set()
        return real_definitions(**kwargs)

    def run(name, fn):
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - the test reads what each side met
            out[name] = exc
        finally:
            connection.close()

    services.events_record, services.custom_field_definitions = events_record, definitions
    try:
        one = threading.Thread(target=run, args=("first", first), name="first")
        one.start()
        assert first_inserted.wait(20)
        two = threading.Thread(target=run, args=("second", second), name="second")
        two.start()
        one.join(30)
        two.join(30)
    finally:
        services.events_record, services.custom_field_definitions = real_events, real_definitions
    return out["first"], out["second"]


@pytest.mark.django_db(transaction=True)
def test_two_batches_racing_for_one_email_one_wins_the_other_meets_the_conflict():
    org = make_org("Race")
    first, second = _race(
        lambda: _create_many(org, [{"first_name": "Winner", "email": "race@example.org"}]),
        lambda: _create_many(org, [{"first_name": "Loser", "email": "RACE@example.org"},
                                   {"first_name": "Bystander", "email": "other@example.org"},
                                   {"first_name": "Loser's twin", "email": "race@EXAMPLE.org"}]),
    )
    winner = first[0].donor
    assert winner is not None and first[0].error is None
    assert second[0].donor is None and isinstance(second[0].error, Conflict)
    assert second[0].error.extra == {"existing_id": winner.id} and second[0].error.param == "email"
    assert second[1].donor is not None  # the rest of the losing batch is stored
    # Refused for the email its batch-mate held: the holder is the winner, as one by one it would be.
    assert isinstance(second[2].error, Conflict) and second[2].error.extra == {"existing_id": winner.id}
    assert sorted(Donor.objects.filter(organisation=org).values_list("first_name", flat=True)) == ["Bystander", "Winner"]
    assert sorted(Event.objects.filter(organisation=org, type="donor.created").values_list("data__first_name", flat=True)) == [
        "Bystander", "Winner"]


@pytest.mark.django_db(transaction=True)
def test_donor_create_racing_for_an_email_raises_the_conflict_and_stores_nothing():
    org = make_org("Race one")
    first, second = _race(
        lambda: services.donor_create(organisation=org, actor=ACTOR, first_name="Winner", email="one@example.org"),
        lambda: services.donor_create(organisation=org, actor=ACTOR, first_name="Loser", email="One@example.org"),
    )
    assert isinstance(first, Donor)
    assert isinstance(second, Conflict) and second.extra == {"existing_id": first.id}
    assert list(Donor.objects.filter(organisation=org).values_list("first_name", flat=True)) == ["Winner"]
    assert AuditEntry.objects.filter(organisation=org, action="donor.created").count() == 1

"""The donors and donations lists filtered on a tag (issue 19's `?tag=`): the donors
list matches the donor row's own `tags` (GIN index donor_tags_gin), the donations
list probes the DonorTag links. Either way the tag's name is matched ignoring case,
only within the organisation, and follows the tag through rename, untag, delete and
merge (the row's `tags` is kept in the same transaction as the links)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from donations import crm, services
from donations.models import Donation, Donor
from organisations.models import Role
from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import SYSTEM

pytestmark = pytest.mark.django_db


def _gift(org, donor, amount=2500):
    return services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                    amount_cents=amount, donation_date=dt.date(2026, 1, 10), payment_method="CASH")


def _donor_ids(client, query: str) -> list[str]:
    html = client.get(reverse("donors") + query).content.decode()
    return re.findall(r'href="/donors/(c[0-9a-z]+)/"', html)


def _donation_donors(client, org, query: str) -> set[str]:
    html = client.get(reverse("donations") + query).content.decode()
    ids = set(re.findall(r'href="/donations/(c[0-9a-z]+)/?"', html))
    return set(Donation.objects.filter(pk__in=ids).values_list("donor_id", flat=True))


@pytest.fixture
def tagged(org, other_org):
    """Two of three donors of `org` tagged "Board"; another organisation has its own
    "board" tag on its own donor."""
    a, b, c = (services.donor_create(organisation=org, actor=SYSTEM, first_name=n, last_name="Tagtest") for n in ("Ann", "Bob", "Cy"))
    crm.donor_tags_add(organisation=org, actor=SYSTEM, donor_id=a.id, names=["Board"])
    crm.donor_tags_add(organisation=org, actor=SYSTEM, donor_id=b.id, names=["Board", "Volunteer"])
    theirs = services.donor_create(organisation=other_org, actor=SYSTEM, first_name="Theo", last_name="Other")
    crm.donor_tags_add(organisation=other_org, actor=SYSTEM, donor_id=theirs.id, names=["board"])
    for donor in (a, b, c):
        _gift(org, donor)
    _gift(other_org, theirs)
    return {"a": a, "b": b, "c": c, "theirs": theirs}


def test_the_tag_filter_ignores_case_and_spaces_around(org, tagged):
    client = client_as(make_user(org, Role.VIEWER))
    expected = {tagged["a"].id, tagged["b"].id}
    for value in ("Board", "board", "BOARD", "  bOaRd "):
        query = "?" + f"tag={value}".replace(" ", "+")
        assert set(_donor_ids(client, query)) == expected, value
        assert _donation_donors(client, org, query) == expected, value
    assert set(_donor_ids(client, "?tag=volunteer")) == {tagged["b"].id}


def test_the_tag_filter_stays_in_the_organisation(org, other_org, tagged):
    ours, theirs = client_as(make_user(org, Role.VIEWER)), client_as(make_user(other_org, Role.VIEWER))
    assert tagged["theirs"].id not in _donor_ids(ours, "?tag=board")
    assert tagged["theirs"].id not in _donation_donors(ours, org, "?tag=board")
    assert _donor_ids(theirs, "?tag=Board") == [tagged["theirs"].id]
    assert _donation_donors(theirs, other_org, "?tag=Board") == {tagged["theirs"].id}
    # a tag only the other organisation has matches nothing here (not everything)
    crm.donor_tags_add(organisation=other_org, actor=SYSTEM, donor_id=tagged["theirs"].id, names=["Secret"])
    assert _donor_ids(ours, "?tag=secret") == [] and _donation_donors(ours, org, "?tag=secret") == set()
    assert _donor_ids(ours, "?tag=nothing-like-it") == []


def test_the_tag_filter_follows_rename_untag_delete_and_merge(org, tagged):
    client = client_as(make_user(org, Role.VIEWER))
    board = crm.tag_by_name(organisation=org, name="board")
    crm.tag_rename(organisation=org, actor=SYSTEM, tag_id=board.id, name="Trustees")
    assert _donor_ids(client, "?tag=board") == []
    assert set(_donor_ids(client, "?tag=trustees")) == {tagged["a"].id, tagged["b"].id}
    crm.donor_tags_remove(organisation=org, actor=SYSTEM, donor_id=tagged["a"].id, names=["Trustees"])
    assert _donor_ids(client, "?tag=trustees") == [tagged["b"].id]
    assert _donation_donors(client, org, "?tag=trustees") == {tagged["b"].id}
    # the merged survivor carries the duplicate's tags
    services.donor_merge(organisation=org, actor=SYSTEM, survivor_id=tagged["c"].id, duplicate_id=tagged["b"].id)
    assert _donor_ids(client, "?tag=trustees") == [tagged["c"].id]
    assert _donor_ids(client, "?tag=volunteer") == [tagged["c"].id]
    assert _donation_donors(client, org, "?tag=trustees") == {tagged["c"].id}
    crm.tag_delete(organisation=org, actor=SYSTEM, tag_id=board.id)
    assert _donor_ids(client, "?tag=trustees") == [] and _donation_donors(client, org, "?tag=trustees") == set()


def test_the_donors_filter_reads_the_row_and_its_index(org, tagged):
    """One small query for the tag, then the list reads donors by `tags @> ARRAY[name]`
    (the exact name of the organisation's tag), which the GIN index serves."""
    client = client_as(make_user(org, Role.VIEWER))
    with CaptureQueriesContext(connection) as ctx:
        assert set(_donor_ids(client, "?tag=BOARD")) == {tagged["a"].id, tagged["b"].id}
    listing = [q["sql"] for q in ctx.captured_queries if 'FROM "donations_donor"' in q["sql"] and "LIMIT 26" in q["sql"]]
    assert len(listing) == 1, listing
    assert """"donations_donor"."tags" @> (ARRAY['Board'])""" in listing[0] and "donations_donortag" not in listing[0], listing[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'donor_tags_gin'")
        assert "USING gin (tags)" in cursor.fetchone()[0]


def test_row_tags_match_the_links(org, tagged):
    """The donors filter trusts Donor.tags: after every change above it equals the links' names."""
    for donor in Donor.objects.for_organisation(org):
        names = sorted(donor.tag_links.values_list("tag__name", flat=True), key=lambda n: (n.lower(), n))
        assert donor.tags == names

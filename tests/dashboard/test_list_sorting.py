"""The dashboard lists' sorts, filters in the URL and CSV download.

Donations sort by gift date (the default, newest first), amount and donor;
donors by name, confirmed total and last gift. Every sort is keyset-paginated:
each is walked here page by page forwards and back (two rows a page, ties on
the sort key included) and compared with the order computed in Python from
what was recorded. The filtered list downloads as the Donations report's CSV,
with the same rows."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from donations import services
from donations.models import Donor
from reports.exporters import REGISTRY
from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import SYSTEM

pytestmark = pytest.mark.django_db

D = dt.date
DONATION_LINK = re.compile(r'href="/donations/([^/"]+)/"')
DONOR_LINK = re.compile(r'<td data-label="Name"><a href="/donors/([^/"]+)/"')
NEXT_LINK = re.compile(r'<a href="\?([^"]+)">Older')
PREV_LINK = re.compile(r'<a href="\?([^"]+)">← Newer')


@pytest.fixture
def books(org, other_org):
    """Donors with names, totals and last gifts that differ (and some that tie), gifts on shared days and amounts."""
    names = [("Zoe", "Adams"), ("adam", "Young"), ("Mia", "Brown"), ("Mia", "Brown"), (None, None)]
    donors = []
    for i, (first, last) in enumerate(names):
        extra = {"organisation_name": "Brown Holdings", "donor_type": "ORGANISATION"} if first is None else {}
        donors.append(services.donor_create(organisation=org, actor=SYSTEM, first_name=first, last_name=last,
                                            email=f"sort-{i}@example.org", **extra))
    plan = [  # donor index, amount, day
        (0, 5_000, D(2026, 3, 1)), (0, 2_500, D(2026, 5, 1)), (1, 5_000, D(2026, 3, 1)), (2, 10_000, D(2025, 12, 24)),
        (3, 2_500, D(2026, 5, 1)), (3, 7_500, D(2026, 1, 9)), (1, 100, D(2026, 6, 30)), (2, 5_000, D(2026, 3, 1)),
    ]
    gifts = [services.donation_record(organisation=org, actor=SYSTEM, donor_id=donors[i].id, amount_cents=amount, donation_date=day,
                                      donation_type="MONETARY", payment_method="CASH") for i, amount, day in plan]
    # A voided gift stays in the donations list, but out of the donor's total and last gift.
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=gifts[6].id, reason="entered twice")
    # Another organisation's records never show.
    stranger = services.donor_create(organisation=other_org, actor=SYSTEM, first_name="Aaron", last_name="Aardvark")
    services.donation_record(organisation=other_org, actor=SYSTEM, donor_id=stranger.id, amount_cents=999_999,
                             donation_date=D(2026, 6, 1), donation_type="MONETARY", payment_method="CASH")
    return {"donors": [Donor.objects.get(pk=d.id) for d in donors], "gifts": gifts}


@pytest.fixture
def client(org):
    return client_as(make_user(org, "VIEWER"))


def walk(client, url: str, link_re) -> tuple[list[str], list[str]]:
    """Every id of the list, page by page forwards; then back from the last page to the first."""
    forward, pages, query = [], [], urlsplit(url).query
    path = urlsplit(url).path
    while True:
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200
        html = response.content.decode()
        ids = link_re.findall(html)
        assert ids, html
        pages.append(html)
        forward += ids
        found = NEXT_LINK.search(html)
        if not found:
            break
        query = found.group(1).replace("&amp;", "&")
    backward = link_re.findall(pages[-1])
    html = pages[-1]
    while (found := PREV_LINK.search(html)) is not None:
        html = client.get(f"{path}?{found.group(1).replace('&amp;', '&')}").content.decode()
        backward = link_re.findall(html) + backward
    return forward, backward


DONATION_SORTS = {
    "-donation_date": (lambda g, n: (g.donation_date, g.id), True),
    "donation_date": (lambda g, n: (g.donation_date, g.id), False),
    "-amount_cents": (lambda g, n: (g.amount_cents, g.id), True),
    "amount_cents": (lambda g, n: (g.amount_cents, g.id), False),
    "donor": (lambda g, n: (n[g.donor_id], g.id), False),
    "-donor": (lambda g, n: (n[g.donor_id], g.id), True),
}


@pytest.mark.parametrize("ordering", list(DONATION_SORTS))
def test_donations_sort_and_page_both_ways(books, client, ordering):
    key, descending = DONATION_SORTS[ordering]
    names = {d.id: d.sort_name for d in books["donors"]}
    expected = [g.id for g in sorted(books["gifts"], key=lambda g: key(g, names), reverse=descending)]
    forward, backward = walk(client, f"{reverse('donations')}?ordering={ordering}&limit=2", DONATION_LINK)
    assert forward == expected
    assert backward == expected


def test_donations_default_to_gift_date_newest_first(books, client):
    html = client.get(reverse("donations")).content.decode()
    expected = [g.id for g in sorted(books["gifts"], key=lambda g: (g.donation_date, g.id), reverse=True)]
    assert DONATION_LINK.findall(html) == expected
    assert re.search(r'<th aria-sort="descending"><a class="sort" href="\?ordering=donation_date">Date</a>', html), html


def test_sort_filters_and_cursor_stay_in_the_url(books, client):
    """Each next/previous link and each header link carries the filters and the sort: a page can be bookmarked."""
    url = f"{reverse('donations')}?ordering=-amount_cents&status=CONFIRMED&donation_date[gte]=2026-01-01&limit=2"
    forward, _ = walk(client, url, DONATION_LINK)
    counted = [g for g in books["gifts"] if g.donation_date >= D(2026, 1, 1) and g.id != books["gifts"][6].id]
    assert forward == [g.id for g in sorted(counted, key=lambda g: (g.amount_cents, g.id), reverse=True)]
    html = client.get(url).content.decode()
    next_query = parse_qs(NEXT_LINK.search(html).group(1).replace("&amp;", "&"))
    assert next_query["ordering"] == ["-amount_cents"] and next_query["status"] == ["CONFIRMED"]
    assert next_query["donation_date[gte]"] == ["2026-01-01"] and "starting_after" in next_query
    header = re.search(r'<a class="sort" href="\?([^"]+)">Amount</a>', html).group(1).replace("&amp;", "&")
    assert parse_qs(header) == {"ordering": ["amount_cents"], "status": ["CONFIRMED"], "donation_date[gte]": ["2026-01-01"],
                                "limit": ["2"]}
    assert 'name="ordering" value="-amount_cents"' in html  # the filter form keeps the sort


@pytest.mark.parametrize("ordering", ["-donation_date", "donor"])
def test_a_page_of_donations_is_a_fixed_number_of_queries(books, client, org, ordering, django_assert_max_num_queries):
    """A full page reads its rows in one query, whatever the sort (no row reads a field on its own)."""
    donor = books["donors"][0]
    for n in range(30):
        services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=100 + n,
                                 donation_date=D(2026, 2, 1), donation_type="MONETARY", payment_method="CASH")
    client.get(reverse("donations"))  # warm (session, membership caches)
    with django_assert_max_num_queries(12):
        html = client.get(f"{reverse('donations')}?ordering={ordering}&limit=25").content.decode()
    assert len(DONATION_LINK.findall(html)) == 25


def test_an_unknown_sort_is_refused_on_the_page(books, client):
    response = client.get(f"{reverse('donations')}?ordering=notes")
    assert response.status_code == 200
    assert "ordering must be one of" in response.content.decode()


DONOR_SORTS = {
    "name": (lambda d: (d.sort_name, d.id), False),
    "-name": (lambda d: (d.sort_name, d.id), True),
    "-donations_total_cents": (lambda d: (d.donations_total_cents, d.id), True),
    "donations_total_cents": (lambda d: (d.donations_total_cents, d.id), False),
    "-last_donation_date": (lambda d: (d.last_donation_date or D(1, 1, 1), d.id), True),
    "last_donation_date": (lambda d: (d.last_donation_date or D(1, 1, 1), d.id), False),
}


@pytest.mark.parametrize("ordering", list(DONOR_SORTS))
def test_donors_sort_and_page_both_ways(books, client, org, ordering):
    services.donor_create(organisation=org, actor=SYSTEM, first_name="Nogifts", last_name="Yet")  # no last gift
    donors = list(Donor.objects.for_organisation(org))
    key, descending = DONOR_SORTS[ordering]
    expected = [d.id for d in sorted(donors, key=key, reverse=descending)]
    forward, backward = walk(client, f"{reverse('donors')}?ordering={ordering}&limit=2", DONOR_LINK)
    assert forward == expected
    assert backward == expected


def test_donor_sort_name_and_last_gift_follow_the_ledger(books, org):
    zoe, adam, mia, mia2, company = books["donors"]
    assert [zoe.sort_name, adam.sort_name, mia.sort_name, company.sort_name] == ["zoe adams", "adam young", "mia brown", "brown holdings"]
    assert (zoe.last_donation_date, adam.last_donation_date, mia.last_donation_date) == (D(2026, 5, 1), D(2026, 3, 1), D(2026, 3, 1))
    assert adam.donations_total_cents == 5_000  # the voided gift of 30 June counts for neither
    gift = services.donation_record(organisation=org, actor=SYSTEM, donor_id=adam.id, amount_cents=1_000,
                                    donation_date=D(2026, 6, 1), donation_type="MONETARY", payment_method="CASH")
    adam.refresh_from_db()
    assert adam.last_donation_date == D(2026, 6, 1)
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=gift.id, reason="wrong donor")
    adam.refresh_from_db()
    assert adam.last_donation_date == D(2026, 3, 1)


def parse(data: bytes) -> tuple[list[str], list[dict]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def test_the_filtered_list_downloads_as_csv(books, client):
    """The CSV has the Donations report's columns and exactly the list's rows under the same filters."""
    query = "status=CONFIRMED&donation_date[gte]=2026-01-01&ordering=-amount_cents&starting_after=x"
    html = client.get(f"{reverse('donations')}?status=CONFIRMED&donation_date[gte]=2026-01-01&ordering=-amount_cents").content.decode()
    link = re.search(r'href="(/donations/export\.csv\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(link).query) == {"status": ["CONFIRMED"], "donation_date[gte]": ["2026-01-01"], "ordering": ["-amount_cents"]}
    response = client.get(f"{reverse('donations-export')}?{query}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, rows = parse(b"".join(response.streaming_content))
    assert header == REGISTRY["donations"].column_names
    listed, _ = walk(client, f"{reverse('donations')}?status=CONFIRMED&donation_date[gte]=2026-01-01&limit=100", DONATION_LINK)
    assert sorted(r["donation_id"] for r in rows) == sorted(listed) and len(rows) == 6


def test_the_whole_list_downloads_every_gift(books, client):
    _, rows = parse(b"".join(client.get(reverse("donations-export")).streaming_content))
    assert sorted(r["donation_id"] for r in rows) == sorted(g.id for g in books["gifts"])


def test_a_bad_filter_on_the_csv_goes_back_to_the_list_with_the_reason(books, client):
    response = client.get(f"{reverse('donations-export')}?status=LOST")
    assert response.status_code == 302 and response["Location"].startswith(reverse("donations"))
    page = client.get(response["Location"]).content.decode()
    assert "The CSV was not made" in page and "status" in page


def test_the_filtered_donors_download_as_csv(books, client, org):
    """The donors CSV is the Donors report under the list's filters: its rows are the list's, in name order."""
    html = client.get(f"{reverse('donors')}?q=brown&ordering=-name").content.decode()
    link = re.search(r'href="(/donors/export\.csv\?[^"]+)"', html).group(1).replace("&amp;", "&")
    response = client.get(link)
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    header, rows = parse(b"".join(response.streaming_content))
    assert header == REGISTRY["donors"].column_names
    listed = DONOR_LINK.findall(html)
    assert [r["donor_id"] for r in rows] == sorted(listed, key=lambda i: (Donor.objects.get(pk=i).sort_name, i))
    by_id = {d.id: d for d in books["donors"]}
    for row in rows:
        donor = by_id[row["donor_id"]]
        assert int(row["total_cents"]) == donor.donations_total_cents
        assert row["last_gift_date"] == (donor.last_donation_date.isoformat() if donor.last_donation_date else "")


def test_the_donors_report_counts_the_period(books, org):
    """period_cents and period_gifts: CONFIRMED gifts dated in the range only (the voided one is out)."""
    from reports.services import report_export, report_spec

    spec = report_spec(organisation=org, name="donors", data={"from": "2026-03-01", "to": "2026-06-30"})
    _, rows = parse(b"".join(report_export(spec=spec, fmt="csv", actor=SYSTEM).chunks))
    got = {r["donor_id"]: (int(r["period_cents"]), int(r["period_gifts"])) for r in rows}
    zoe, adam, mia, mia2, company = books["donors"]
    assert got == {zoe.id: (7_500, 2), adam.id: (5_000, 1), mia.id: (5_000, 1), mia2.id: (2_500, 1), company.id: (0, 0)}


def test_the_api_does_not_take_the_dashboard_sort(read_client):
    """The API lists stay in created order: `ordering` there is an unknown parameter (400), never silently ignored."""
    response = read_client.get("/api/v1/donations?ordering=-amount_cents")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request" and response.json()["error"]["param"] == "ordering"

"""Keyset pagination and bracket filters, through the API with real keys."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.models import Donor
from tests.support.api import assert_error, seed_campaign, seed_donation, make_donor

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc


def expected_order(organisation) -> list[str]:
    """Newest first by (created_at, id), straight from the database."""
    return list(Donor.objects.for_organisation(organisation).order_by("-created_at", "-id").values_list("id", flat=True))


@pytest.fixture
def donors(org):
    """23 donors; five of them share one created_at so the id tiebreak matters."""
    made = [make_donor(org, first_name=f"D{i}") for i in range(23)]
    tie = dt.datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    Donor.objects.filter(pk__in=[d.id for d in made[5:10]]).update(created_at=tie)
    return made


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["data"]]


def test_default_limit_is_10_and_has_more(org, donors, read_client):
    response = read_client.get("/api/v1/donors")
    body = response.json()
    assert set(body) == {"data", "has_more"}
    assert len(body["data"]) == 10
    assert body["has_more"] is True
    assert ids(response) == expected_order(org)[:10]


def test_whole_list_in_one_page_has_no_more(org, donors, read_client):
    response = read_client.get("/api/v1/donors?limit=100")
    assert ids(response) == expected_order(org)
    assert response.json()["has_more"] is False
    exact = read_client.get("/api/v1/donors?limit=23")
    assert len(ids(exact)) == 23 and exact.json()["has_more"] is False
    short = read_client.get("/api/v1/donors?limit=22")
    assert len(ids(short)) == 22 and short.json()["has_more"] is True


def test_empty_list(read_client):
    assert read_client.get("/api/v1/donors").json() == {"data": [], "has_more": False}


@pytest.mark.parametrize("limit", ["1", "100", "37"])
def test_limit_in_range(org, donors, read_client, limit):
    assert len(ids(read_client.get(f"/api/v1/donors?limit={limit}"))) == min(int(limit), 23)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1000", "abc", "1.5", "10e2", " "])
@pytest.mark.parametrize("path", ["/api/v1/donors", "/api/v1/donations", "/api/v1/campaigns"])
def test_limit_out_of_range_is_validation_failed(read_client, path, limit):
    assert_error(read_client.get(path, {"limit": limit}), 400, "validation_failed", param="limit")


@pytest.mark.parametrize("page_size", [1, 4, 5, 10])
def test_walk_forwards_then_backwards_without_gaps_or_duplicates(org, donors, read_client, page_size):
    order = expected_order(org)
    pages, cursor = [], None
    while True:
        query = {"limit": page_size}
        if cursor:
            query["starting_after"] = cursor
        response = read_client.get("/api/v1/donors", query)
        page = ids(response)
        pages.append(page)
        if not response.json()["has_more"]:
            break
        cursor = page[-1]
        assert len(pages) < 100
    walked = [i for p in pages for i in p]
    assert walked == order
    assert all(len(p) == page_size for p in pages[:-1])

    # Backwards from the last page: ending_before the first id of each page.
    back, cursor = [pages[-1]], pages[-1][0]
    while True:
        response = read_client.get("/api/v1/donors", {"limit": page_size, "ending_before": cursor})
        page = ids(response)
        back.insert(0, page)
        if not response.json()["has_more"]:
            break
        cursor = page[0]
        assert len(back) < 100
    walked_back = [i for p in back for i in p]
    assert walked_back == order
    # Each backward page is ordered newest first too, and is the page just before the cursor.
    assert back[0] == order[: len(back[0])]


def test_ending_before_returns_the_items_just_before(org, donors, read_client):
    order = expected_order(org)
    page = ids(read_client.get("/api/v1/donors", {"limit": 3, "ending_before": order[10]}))
    assert page == order[7:10]
    response = read_client.get("/api/v1/donors", {"limit": 3, "ending_before": order[2]})
    assert ids(response) == order[0:2]
    assert response.json()["has_more"] is False


def test_starting_after_the_last_item_is_an_empty_page(org, donors, read_client):
    last = expected_order(org)[-1]
    response = read_client.get("/api/v1/donors", {"starting_after": last})
    assert response.json() == {"data": [], "has_more": False}


@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
def test_unknown_cursor_is_validation_failed(donors, read_client, param):
    for cursor in ("cm3doesnotexist000000000", "x", "' OR 1=1 --"):
        assert_error(read_client.get("/api/v1/donors", {param: cursor}), 400, "validation_failed", param=param)


@pytest.mark.parametrize("param", ["starting_after", "ending_before"])
def test_cursor_from_another_organisation_is_validation_failed(org, other_org, donors, read_client, param):
    foreign = make_donor(other_org)
    sandbox_donor = make_donor(org.sandbox)
    for cursor in (foreign.id, sandbox_donor.id):
        error = assert_error(read_client.get("/api/v1/donors", {param: cursor}), 400, "validation_failed", param=param)
        assert foreign.email not in error["message"]


def test_cursor_of_another_type_is_validation_failed(org, donors, read_client):
    donation = seed_donation(org, donors[0])
    assert_error(read_client.get("/api/v1/donors", {"starting_after": donation.id}), 400, "validation_failed", param="starting_after")


def test_both_cursors_is_validation_failed(org, donors, read_client):
    order = expected_order(org)
    response = read_client.get("/api/v1/donors", {"starting_after": order[1], "ending_before": order[5]})
    assert_error(response, 400, "validation_failed")


def test_pagination_combines_with_filters(org, donors, read_client):
    cutoff = dt.datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    wanted = list(
        Donor.objects.for_organisation(org).filter(created_at__gte=cutoff).order_by("-created_at", "-id").values_list("id", flat=True)
    )
    walked, cursor = [], None
    while True:
        query = {"limit": 4, "created_at[gte]": "2026-02-01T12:00:00Z"}
        if cursor:
            query["starting_after"] = cursor
        response = read_client.get("/api/v1/donors", query)
        walked += ids(response)
        if not response.json()["has_more"]:
            break
        cursor = walked[-1]
    assert walked == wanted


# --- bracket filters -------------------------------------------------------------------

@pytest.fixture
def dated(org):
    """Donors with known created_at / updated_at instants (UTC)."""
    stamps = {
        "dec31_late": dt.datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        "jan1_start": dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC),
        "jan1_noon": dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC),
        "jan1_end": dt.datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=UTC),
        "jan2_start": dt.datetime(2026, 1, 2, 0, 0, 0, tzinfo=UTC),
        "feb1": dt.datetime(2026, 2, 1, 8, 30, tzinfo=UTC),
    }
    out = {}
    for name, when in stamps.items():
        donor = make_donor(org, first_name=name)
        # updated_at runs one day behind created_at, so the two filters are told apart.
        Donor.objects.filter(pk=donor.id).update(created_at=when, updated_at=when - dt.timedelta(days=1))
        out[name] = donor.id
    return out


def names(response, dated) -> set[str]:
    by_id = {v: k for k, v in dated.items()}
    return {by_id[i] for i in ids(response)}


ALL = {"dec31_late", "jan1_start", "jan1_noon", "jan1_end", "jan2_start", "feb1"}


@pytest.mark.parametrize(
    "query,expected",
    [
        # Dates are whole UTC days.
        ({"created_at[gte]": "2026-01-01"}, ALL - {"dec31_late"}),
        ({"created_at[gt]": "2026-01-01"}, {"jan2_start", "feb1"}),
        ({"created_at[lt]": "2026-01-01"}, {"dec31_late"}),
        ({"created_at[lte]": "2026-01-01"}, {"dec31_late", "jan1_start", "jan1_noon", "jan1_end"}),
        ({"created_at[gte]": "2026-01-01", "created_at[lt]": "2026-01-02"}, {"jan1_start", "jan1_noon", "jan1_end"}),
        # Datetimes are exact instants, with Z, an offset or none (UTC).
        ({"created_at[gte]": "2026-01-01T12:00:00Z"}, {"jan1_noon", "jan1_end", "jan2_start", "feb1"}),
        ({"created_at[gt]": "2026-01-01T12:00:00Z"}, {"jan1_end", "jan2_start", "feb1"}),
        ({"created_at[lt]": "2026-01-01T12:00:00Z"}, {"dec31_late", "jan1_start"}),
        ({"created_at[lte]": "2026-01-01T12:00:00Z"}, {"dec31_late", "jan1_start", "jan1_noon"}),
        ({"created_at[gte]": "2026-01-01T23:00:00+11:00"}, {"jan1_noon", "jan1_end", "jan2_start", "feb1"}),
        ({"created_at[lt]": "2026-01-01T12:00:00"}, {"dec31_late", "jan1_start"}),
        ({"created_at[gte]": "2026-01-01T12:00:00.000Z", "created_at[lte]": "2026-01-02T00:00:00Z"}, {"jan1_noon", "jan1_end", "jan2_start"}),
        ({"created_at[gte]": "2027-01-01"}, set()),
        # updated_at is one day behind created_at in this fixture.
        ({"updated_at[gte]": "2026-01-01"}, {"jan2_start", "feb1"}),
        ({"updated_at[lt]": "2026-01-01"}, {"dec31_late", "jan1_start", "jan1_noon", "jan1_end"}),
        ({"updated_at[gt]": "2025-12-31T12:00:00Z"}, {"jan1_end", "jan2_start", "feb1"}),
        ({"updated_at[gte]": "2025-12-31T12:00:00Z"}, {"jan1_noon", "jan1_end", "jan2_start", "feb1"}),
        ({"updated_at[lte]": "2025-12-30"}, {"dec31_late"}),
    ],
)
def test_created_and_updated_at_brackets(dated, read_client, query, expected):
    response = read_client.get("/api/v1/donors", {**query, "limit": 100})
    assert names(response, dated) == expected


def test_plus_sign_in_an_offset_sent_unencoded(dated, read_client):
    """`+11:00` arrives as a space when a client does not encode the query string."""
    response = read_client.get("/api/v1/donors?limit=100&created_at[gte]=2026-01-01T23:00:00+11:00")
    assert names(response, dated) == {"jan1_noon", "jan1_end", "jan2_start", "feb1"}


def test_percent_encoded_brackets(dated, read_client):
    response = read_client.get("/api/v1/donors?limit=100&created_at%5Bgte%5D=2026-01-02")
    assert names(response, dated) == {"jan2_start", "feb1"}


@pytest.mark.parametrize("name", ["created_at[gte]", "created_at[lt]", "updated_at[gt]", "updated_at[lte]"])
@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "yesterday", "01/02/2026", "2026-01-01T25:00:00Z", "2026-1-1x"])
def test_bad_date_is_validation_failed_with_param(read_client, name, value):
    assert_error(read_client.get("/api/v1/donors", {name: value}), 400, "validation_failed", param=name)


@pytest.mark.parametrize("name", ["created_at", "created_at[eq]", "created_at[gte", "created_at[]", "updated_at[ne]", "created[gte]"])
def test_unknown_bracket_operator_is_invalid_request(read_client, name):
    assert_error(read_client.get("/api/v1/donors", {name: "2026-01-01"}), 400, "invalid_request", param=name)


@pytest.mark.parametrize("path", ["/api/v1/donations", "/api/v1/campaigns"])
def test_brackets_on_every_list(org, read_client, path):
    donor = make_donor(org)
    seed_donation(org, donor)
    seed_campaign(org)
    assert len(ids(read_client.get(path, {"created_at[gte]": "2000-01-01"}))) == 1
    assert ids(read_client.get(path, {"created_at[lt]": "2000-01-01"})) == []
    assert len(ids(read_client.get(path, {"updated_at[lte]": "2999-01-01"}))) == 1
    assert_error(read_client.get(path, {"updated_at[gte]": "soon"}), 400, "validation_failed", param="updated_at[gte]")


def test_filter_by_email(org, read_client):
    alice = make_donor(org, email="Alice@Example.org")
    make_donor(org, email="bob@example.org")
    assert ids(read_client.get("/api/v1/donors", {"email": "alice@example.org"})) == [alice.id]


# --- query counts ------------------------------------------------------------------------

def _count_queries(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content
    # Keyset pagination: no OFFSET anywhere.
    for query in ctx.captured_queries:
        assert " OFFSET " not in query["sql"].upper(), query["sql"]
    return len(ctx.captured_queries)


@pytest.fixture
def hundred_plus(org):
    """More than 100 of everything: 101 gifts of one donor to one campaign, then
    20 gifts of nine other donors to a second campaign (newest, so a first page
    mixes donors and campaigns), and 101 campaigns."""
    campaigns = [seed_campaign(org) for _ in range(101)]
    donors = [make_donor(org) for _ in range(10)]
    for i in range(101):
        seed_donation(org, donors[0], campaign_id=campaigns[0].id, amount_cents=100 + i)
    for i in range(20):
        seed_donation(org, donors[1 + i % 9], campaign_id=campaigns[1].id, amount_cents=100 + i)
    for _ in range(91):
        make_donor(org)
    return {"donor": donors[0].id, "campaign": campaigns[0].id}


LIST_PATHS = [
    "/api/v1/donors",
    "/api/v1/donors?created_at[gte]=2000-01-01&updated_at[lt]=2999-01-01",
    "/api/v1/donations",
    "/api/v1/donations?expand[]=donor&expand[]=campaign",
    "/api/v1/campaigns",
    "/api/v1/donors/{donor}/donations?expand[]=donor&expand[]=campaign",
    "/api/v1/campaigns/{campaign}/donations?expand[]=campaign",
]


@pytest.mark.usefixtures("isolated_key_generation")
def test_list_query_count_does_not_grow_with_page_size(hundred_plus, read_client, django_assert_max_num_queries):
    """One seeding (it is the slow part), every list path checked against it."""
    # Warm the key's last_used_at marker so every measurement takes the same path.
    read_client.get("/api/v1/whoami")
    for template in LIST_PATHS:
        path = template.format(**hundred_plus)
        sep = "&" if "?" in path else "?"
        small = _count_queries(read_client, f"{path}{sep}limit=5")
        large = _count_queries(read_client, f"{path}{sep}limit=100")
        assert large == small, (path, small, large)
        with django_assert_max_num_queries(6):
            page = read_client.get(f"{path}{sep}limit=100").json()
        assert len(page["data"]) == 100 and page["has_more"] is True, path
        with django_assert_max_num_queries(7):
            after = read_client.get(f"{path}{sep}limit=100&starting_after={page['data'][49]['id']}").json()
        assert len(after["data"]) >= 50, path
        _count_queries(read_client, f"{path}{sep}limit=100&starting_after={page['data'][49]['id']}")
        _count_queries(read_client, f"{path}{sep}limit=7&ending_before={after['data'][10]['id']}")


# --- found by schemathesis: odd but valid offsets, ranges, empty and boolean values ----------

def test_offsets_beyond_postgres_range_are_normalised(dated, read_client):
    """ISO 8601 allows offsets PostgreSQL refuses (beyond ±15:59); they are the same instant in UTC."""
    # 2026-01-01T20:00-18:00 is 2026-01-02T14:00Z.
    response = read_client.get("/api/v1/donors", {"limit": 100, "created_at[gte]": "2026-01-01T20:00:00-18:00"})
    assert names(response, dated) == {"feb1"}
    response = read_client.get("/api/v1/donors", {"limit": 100, "updated_at[lt]": "3475-02-03T02:08:01-18:57"})
    assert names(response, dated) == ALL


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "9999-12-31T23:59:59-15:00", "0001-01-01T00:00:00+15:00"])
@pytest.mark.parametrize("name", ["created_at[gt]", "created_at[lte]", "updated_at[gte]"])
def test_dates_at_the_edge_of_the_calendar_are_validation_failed(read_client, name, value):
    assert_error(read_client.get("/api/v1/donors", {name: value}), 400, "validation_failed", param=name)


@pytest.mark.parametrize("query", ["limit=", "starting_after=", "created_at[gte]=", "email=", "status=&limit=5", "expand[]="])
def test_empty_query_values_are_invalid_request(read_client, query):
    path = "/api/v1/donations" if "status" in query or "expand" in query else "/api/v1/donors"
    name = query.split("=")[0]
    assert_error(read_client.get(f"{path}?{query}"), 400, "invalid_request", param=name)


@pytest.mark.parametrize("query", ["limit=5&limit=10", "status=CONFIRMED&status=VOIDED", "created_at[gte]=2026-01-01&created_at[gte]=2027-01-01"])
def test_repeated_query_parameters_are_invalid_request(read_client, query):
    name = query.split("=")[0]
    error = assert_error(read_client.get(f"/api/v1/donations?{query}"), 400, "invalid_request", param=name)
    assert "2 times" in error["message"]


def test_list_parameters_may_repeat(org, read_client):
    donor = make_donor(org)
    seed_donation(org, donor)
    response = read_client.get("/api/v1/donations?expand[]=donor&expand[]=campaign")
    assert response.status_code == 200
    assert response.json()["data"][0]["donor"]["id"] == donor.id


def test_boolean_filters_take_only_true_or_false():
    """BaseFilterSet makes every BooleanFilter strict: django-filter's own also
    takes null, 1, yes, unknown... and silently ignores the rest."""
    import django_filters
    from django.http import QueryDict

    from donations.models import Donor
    from together.api.filters import BaseFilterSet

    class Probe(BaseFilterSet):
        has_email = django_filters.BooleanFilter(field_name="email", lookup_expr="isnull", exclude=True)

        class Meta:
            model = Donor
            fields: list[str] = []

    for good in ("true", "false"):
        assert Probe(QueryDict(f"has_email={good}"), queryset=Donor.objects.none()).is_valid()
    for bad in ("null", "None", "1", "yes", "True", "unknown"):
        filterset = Probe(QueryDict(f"has_email={bad}"), queryset=Donor.objects.none())
        assert not filterset.is_valid(), bad
        assert "has_email" in filterset.errors

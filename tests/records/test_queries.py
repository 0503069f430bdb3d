"""Every list endpoint runs the same number of queries whatever the page size
(and expand adds a fixed number, never one per row)."""
from __future__ import annotations

import datetime as dt

import pytest

from donations.models import Campaign, Donation, Donor
from tests.records.helpers import count_queries, make_campaign, record
from tests.support.api import make_donor

N = 30
pytestmark = pytest.mark.usefixtures("isolated_key_generation")


@pytest.fixture
def filled(org):
    """N donors, N campaigns and 3N gifts spread over them, N on one donor and one
    campaign. Bulk-inserted: the shape matters here, not the path that wrote it
    (the services are exercised everywhere else)."""
    donors = Donor.objects.bulk_create([Donor(organisation=org, first_name=f"Q{i}", email=f"q{i}@example.com") for i in range(N)])
    campaigns = Campaign.objects.bulk_create([Campaign(organisation=org, name=f"C{i}") for i in range(N)])
    anchor_donor, anchor_campaign = donors[0], campaigns[0]
    day = dt.date(2026, 3, 1)
    gifts = []
    for i in range(N):
        gifts.append(Donation(organisation=org, donor=donors[i], campaign=campaigns[i], donation_type="MONETARY",
                              amount_cents=100 + i, donation_date=day))
        gifts.append(Donation(organisation=org, donor=anchor_donor, campaign=anchor_campaign, donation_type="MONETARY",
                              amount_cents=1_000 + i, donation_date=day))
        gifts.append(Donation(organisation=org, donor=donors[i], campaign=campaigns[-1 - i], donation_type="IN_KIND",
                              amount_cents=50 + i, donation_date=day, in_kind_category="GOODS", in_kind_description="Chairs"))
    Donation.objects.bulk_create(gifts)
    return {"donor": anchor_donor, "campaign": anchor_campaign}


LISTS = [
    "/api/v1/donors",
    "/api/v1/donors?q=example&donor_type=INDIVIDUAL&created_at[gte]=2020-01-01",
    "/api/v1/donations",
    "/api/v1/donations?status=CONFIRMED&amount_cents[gte]=1&donation_date[lte]=2030-01-01",
    "/api/v1/donations?expand[]=donor",
    "/api/v1/donations?expand[]=campaign",
    "/api/v1/donations?expand[]=donor&expand[]=campaign",
    "/api/v1/campaigns",
    "/api/v1/campaigns?status=ACTIVE",
    "/api/v1/donors/{donor}/donations",
    "/api/v1/donors/{donor}/donations?expand[]=donor&expand[]=campaign",
    "/api/v1/campaigns/{campaign}/donations",
    "/api/v1/campaigns/{campaign}/donations?expand[]=donor&expand[]=campaign",
]


def test_list_queries_do_not_grow_with_the_page(read_client, filled, django_assert_max_num_queries, subtests):
    for path in LISTS:
        with subtests.test(path=path):
            _check_list(read_client, filled, path, django_assert_max_num_queries)


def _check_list(read_client, filled, path, django_assert_max_num_queries):
    url = path.format(donor=filled["donor"].id, campaign=filled["campaign"].id)
    sep = "&" if "?" in url else "?"
    read_client.get(url)  # warm: the first use of a key in a minute records last_used_at
    small = count_queries(lambda: read_client.get(f"{url}{sep}limit=2"))
    with django_assert_max_num_queries(small):
        response = read_client.get(f"{url}{sep}limit=100")
    assert response.status_code == 200
    assert len(response.json()["data"]) >= N
    # a cursor page costs one lookup more, however deep
    cursor = response.json()["data"][N // 2]["id"]
    with django_assert_max_num_queries(small + 1):
        assert read_client.get(f"{url}{sep}limit=100&starting_after={cursor}").status_code == 200
    # and the absolute figure stays small: auth, the page, one per expanded relation (+ rollups)
    assert small <= 2 + 1 + 1 + url.count("expand[]=") + (1 if "campaign" in url else 0), small


@pytest.mark.parametrize("path", [
    "/api/v1/donors/{donor}",
    "/api/v1/donations/{donation}?expand[]=donor&expand[]=campaign",
    "/api/v1/campaigns/{campaign}",
])
def test_retrieve_queries_are_bounded(read_client, org, path, django_assert_max_num_queries):
    donor, campaign = make_donor(org), make_campaign(org)
    donation = record(org, donor, campaign_id=campaign.id)
    url = path.format(donor=donor.id, campaign=campaign.id, donation=donation.id)
    read_client.get(url)
    with django_assert_max_num_queries(5):
        assert read_client.get(url).status_code == 200

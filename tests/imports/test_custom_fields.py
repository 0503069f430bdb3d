"""Imports fill custom fields (issue 19): a column mapped to `custom:<key>` (a gift
field) or `donor_custom:<key>` (a donor field, for the donors the import creates) is
typed by the one rule (donations.custom_fields); a bad value makes its row INVALID with
the column's field named, a missing required gift field too; the rest commit."""
from __future__ import annotations

import pytest

from donations.custom_fields import custom_field_create
from donations.models import Donation, Donor
from imports import services
from tests.imports.helpers import ACTOR, commit, upload
from together.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

CSV = (
    "Email,Amount,Date,Region,Pledge,Joined\r\n"
    "a@example.org,50,01/03/2025,North,10,01/07/2019\r\n"     # good: typed values
    "b@example.org,60,02/03/2025,West,11,2020-01-31\r\n"      # not a choice
    "c@example.org,70,03/03/2025,South,lots,\r\n"             # not a number
    "d@example.org,80,04/03/2025,,12,\r\n"                    # the required region is missing
    "e@example.org,90,05/03/2025,south,1.5,31/02/2020\r\n"    # no such date
)
MAPPING = {"Email": "email", "Amount": "amount", "Date": "donation_date", "Region": "custom:region",
           "Pledge": "custom:pledge", "Joined": "donor_custom:joined"}


@pytest.fixture
def fields(org):
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONATION", key="region", label="Region",
                        field_type="CHOICE", choices=["North", "South"], required=True)
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONATION", key="pledge", label="Pledge", field_type="NUMBER")
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONOR", key="joined", label="Joined", field_type="DATE")


def test_bad_custom_values_make_their_rows_invalid_naming_the_field(org, fields):
    job = upload(org, CSV, mapping=MAPPING)
    rows = {r.position: r for r in job.rows.order_by("position")}
    assert rows[2].outcome == "CREATE_GIFT"
    assert (rows[3].outcome, rows[3].field) == ("INVALID", "custom:region") and "North, South" in rows[3].reason
    assert (rows[4].outcome, rows[4].field) == ("INVALID", "custom:pledge") and "number" in rows[4].reason
    assert (rows[5].outcome, rows[5].field, rows[5].reason) == ("INVALID", "custom:region", "Region is required.")
    assert (rows[6].outcome, rows[6].field) == ("INVALID", "donor_custom:joined")
    assert not Donation.objects.filter(organisation=org).exists()  # a dry run stores nothing

    job = commit(org, job)
    gift = Donation.objects.get(organisation=org)
    assert gift.custom_fields == {"region": "North", "pledge": 10}
    assert Donor.objects.get(organisation=org, email="a@example.org").custom_fields == {"joined": "2019-07-01"}
    assert Donation.objects.filter(organisation=org).count() == 1


def test_a_mapping_to_an_unknown_custom_field_is_refused_per_row_and_in_the_mapping(org, fields):
    job = upload(org, "Email,Amount,Date,Region,Other\r\na@example.org,5,01/03/2025,North,x\r\n",
                 mapping={"Email": "email", "Amount": "amount", "Date": "donation_date", "Region": "custom:region",
                          "Other": "custom:nothing"})
    row = job.rows.get()
    assert (row.outcome, row.field) == ("INVALID", "custom:nothing")
    with pytest.raises(ValidationFailed):
        services.import_remap(organisation=org, actor=ACTOR, import_id=job.id,
                              mapping={"Email": "email", "Region": "custom:Bad Key"})

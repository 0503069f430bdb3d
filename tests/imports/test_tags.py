"""A Tags column (names separated by commas or semicolons) puts tags on each row's
donor through donations.crm's tag services: unknown tags are created, a name the
donor carries already (in any case) changes nothing, a bad name makes the row
INVALID at the dry run, and a re-run tags no one again."""
from __future__ import annotations

import pytest

from donations.models import Donation, Donor, Tag
from imports.mapping import suggest
from tests.imports.helpers import commit, outcomes, upload
from webhooks.models import Event

pytestmark = pytest.mark.django_db

CSV = (
    "Email,Amount,Date,Tags\r\n"
    "a@example.org,10,01/03/2025,VIP; Monthly\r\n"
    "a@example.org,20,02/03/2025,vip\r\n"                   # carried already: no change
    "b@example.org,30,03/03/2025,\r\n"                      # no tags
    "c@example.org,40,04/03/2025,bad/tag\r\n"               # not a tag name
    "d@example.org,50,05/03/2025,\"Monthly,  New   donor ,\"\r\n"
)


def test_a_tags_column_tags_each_rows_donor_and_a_rerun_changes_nothing(org):
    assert suggest(["Email", "Amount", "Date", "Tags"])["Tags"] == "tags"
    job = upload(org, CSV)
    rows = {r.position: r for r in job.rows.all()}
    assert (rows[5].outcome, rows[5].field) == ("INVALID", "tags") and "slash" in rows[5].reason
    done = commit(org, job)
    assert {p: o for p, (o, _d, _m) in outcomes(done).items()} == {
        2: "CREATE_GIFT", 3: "CREATE_GIFT", 4: "CREATE_GIFT", 5: "INVALID", 6: "CREATE_GIFT"}
    tags = {d.email: d.tags for d in Donor.objects.filter(organisation=org)}
    assert tags == {"a@example.org": ["Monthly", "VIP"], "b@example.org": [], "d@example.org": ["Monthly", "New donor"]}
    assert sorted(Tag.objects.filter(organisation=org).values_list("name", flat=True)) == ["Monthly", "New donor", "VIP"]
    tagged = Event.objects.filter(organisation=org, type="donor.tagged")
    assert sorted((e.data["email"], tuple(e.data["tags_added"])) for e in tagged) == [
        ("a@example.org", ("Monthly", "VIP")), ("d@example.org", ("Monthly", "New donor"))]

    again = commit(org, upload(org, CSV))
    assert again.status == "COMPLETED"
    assert Donor.objects.filter(organisation=org).count() == 3
    assert Donation.objects.filter(organisation=org).count() == 4
    assert Tag.objects.filter(organisation=org).count() == 3
    assert Event.objects.filter(organisation=org, type="donor.tagged").count() == 2

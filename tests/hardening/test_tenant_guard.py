"""The second tenancy guard (together.models.tenant_guard): in the dashboard and
API test runs every request runs under it, and an unscoped query of a tenant
model in a view fails loudly. Proven here with two small views mounted for the
test: one that loads by id alone (fails), one through the dashboard's choke point
(DashboardMixin.get_scoped_or_404: passes, and another organisation's id is 404)."""
from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.urls import path
from django.views import View

from donations.models import Donation, Donor
from donations.selectors import donor_snapshot
from donations.services import donation_record, donor_create
from organisations.models import Role
from organisations.services import membership_set, user_get_or_create
from organisations.session import COOKIE, DashboardMixin
from tests.support.tenant_guard import tenant_guard_requests  # noqa: F401
from together.actors import Actor
from together.models import UnscopedTenantQuery, tenant_guard


class UnscopedDonorView(DashboardMixin, View):
    def get(self, request, pk):
        return HttpResponse(Donor.objects.get(pk=pk).display_name)  # the mistake the guard exists for


class ScopedDonorView(DashboardMixin, View):
    def get(self, request, pk):
        return HttpResponse(self.get_scoped_or_404(Donor, pk).display_name)


urlpatterns = [
    path("guard-test/unscoped/<str:pk>/", UnscopedDonorView.as_view()),
    path("guard-test/scoped/<str:pk>/", ScopedDonorView.as_view()),
]

ACTOR = Actor.system("test")


@pytest.fixture
def donor(org):
    return donor_create(organisation=org, actor=ACTOR, first_name="Ada", last_name="Lovelace")


@pytest.fixture
def signed_in(client, org):
    user = user_get_or_create(email="guard-viewer@example.org", password="x")
    membership_set(organisation=org, user=user, role=Role.VIEWER)
    client.force_login(user)
    client.cookies[COOKIE] = org.id
    return client


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("tenant_guard_requests")
def test_an_unscoped_query_in_a_view_fails_the_request(signed_in, donor):
    with pytest.raises(UnscopedTenantQuery, match="donations.Donor"):
        signed_in.get(f"/guard-test/unscoped/{donor.id}/")


@pytest.mark.urls(__name__)
def test_the_same_view_without_the_guard_serves_it(signed_in, donor):
    """What the guard catches: without it, the page answers (and would answer for any organisation's id)."""
    assert signed_in.get(f"/guard-test/unscoped/{donor.id}/").content == b"Ada Lovelace"


@pytest.mark.urls(__name__)
@pytest.mark.usefixtures("tenant_guard_requests")
def test_a_scoped_view_passes_and_another_organisations_id_is_404(signed_in, donor, other_org):
    assert signed_in.get(f"/guard-test/scoped/{donor.id}/").content == b"Ada Lovelace"
    foreign = donor_create(organisation=other_org, actor=ACTOR, first_name="Grace")
    assert signed_in.get(f"/guard-test/scoped/{foreign.id}/").status_code == 404


@pytest.mark.django_db
def test_what_counts_as_scoped(org, donor):
    import datetime as dt

    donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY", amount_cents=500,
                    donation_date=dt.date(2024, 1, 1), payment_method="CASH")
    with tenant_guard():
        # Not scoped: by id alone, everything, a negated or OR-ed organisation.
        for unscoped in (lambda: Donor.objects.get(pk=donor.id), lambda: list(Donor.objects.all()),
                         lambda: Donor.objects.count(), lambda: Donor.objects.filter(pk=donor.id).exists(),
                         lambda: Donor.objects.exclude(organisation=org).first(),
                         lambda: Donor.objects.filter(pk=donor.id).update(notes="x")):
            with pytest.raises(UnscopedTenantQuery):
                unscoped()
        # Scoped: from the organisation, or from a record that was.
        assert Donor.objects.for_organisation(org).get(pk=donor.id) == donor
        assert Donation.objects.filter(donor=donor).count() == 1
        assert list(donor.donations.all())
        assert Donation.objects.filter(donor__organisation=org).exists()
        # A platform-level query says why, by name.
        assert Donor.objects.unscoped("celery sweep").filter(pk=donor.id).exists()
        with pytest.raises(ValueError):
            Donor.objects.unscoped("because")
        # Services and selectors take the organisation as an argument and re-read
        # what they just locked by id: their queries are theirs to scope.
        assert donor_snapshot(donor_id=donor.id)["id"] == donor.id
    # Off outside the guard.
    assert Donor.objects.get(pk=donor.id) == donor

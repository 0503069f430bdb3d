"""Custom fields through the staff admin (issue 19): the donor and donation forms take
`custom_fields` as JSON and go through the services, so custom_fields_clean's refusals
come back on the form and nothing is stored."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from donations import services
from donations.custom_fields import custom_field_create
from donations.models import Donation
from organisations.models import Membership
from together.actors import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


@pytest.fixture
def staff(org):
    user = User.objects.create_user(username="cf-staff", email="cf-staff@example.org", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    Membership.objects.create(user=user, organisation=org, role="ADMIN")
    client = Client()
    client.force_login(user)
    return client


def test_admin_gift_takes_custom_fields_and_shows_refusals(org, staff):
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONATION", key="region", label="Region",
                        field_type="CHOICE", choices=["North", "South"], required=True)
    donor = services.donor_create(organisation=org, actor=SYSTEM, email="admin-cf@example.org")
    body = {"organisation": org.id, "donor": donor.id, "donation_type": "MONETARY", "amount_cents": 1500,
            "donation_date": "2026-03-01", "payment_method": "CASH"}
    url = reverse("admin:donations_donation_add")
    missing = staff.post(url, body | {"custom_fields": "{}"})
    assert missing.status_code == 200 and "Region is required." in missing.content.decode()
    bad = staff.post(url, body | {"custom_fields": json.dumps({"region": "West"})})
    assert bad.status_code == 200 and "Region must be one of: North, South." in bad.content.decode()
    assert not Donation.objects.filter(organisation=org).exists()
    ok = staff.post(url, body | {"custom_fields": json.dumps({"region": "south"})})
    assert ok.status_code == 302, ok.content.decode()[:2000]
    assert Donation.objects.get(organisation=org).custom_fields == {"region": "South"}

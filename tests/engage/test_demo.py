"""engage/demo.py: the demo organisation connected, an ACTIVE form and a payable checkout
link, printed with the test cards; idempotent."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings
from django.utils import timezone

from engage.models import CheckoutLink, DonationForm, FormStatus
from together.demo import DEMO_STEPS, DemoContext, discover_steps

pytestmark = pytest.mark.django_db


def run_core_and_engage() -> DemoContext:
    discover_steps()
    ctx = DemoContext(stdout=io.StringIO())
    for step in sorted(DEMO_STEPS, key=lambda s: (s.order, s.name)):
        if step.order < 100 or step.name == "engage.payments":
            step.run(ctx)
    return ctx


def test_demo_payments_step():
    ctx = run_core_and_engage()
    org = ctx.organisation
    org.refresh_from_db()
    assert org.stripe_connected and org.stripe_account_id.startswith("acct_")
    form = DonationForm.objects.get(slug="demo-donate")
    assert form.organisation_id == org.id and form.status == FormStatus.ACTIVE
    link = CheckoutLink.objects.get(organisation=org)
    assert link.is_payable and link.amount_cents == 25000 and link.donor.email == "sam.citizen@example.org"
    assert f"Demo donation form: {settings.SITE_URL}/donate/demo-donate" in ctx.lines
    assert f"Demo checkout link: {settings.SITE_URL}/c/{link.code}" in ctx.lines
    assert "Test card: 4242 4242 4242 4242 (any future expiry, any CVC); declined: 4000 0000 0000 0002" in ctx.lines
    assert ctx.sandbox.__class__.objects.get(pk=ctx.sandbox.pk).stripe_connected

    again = run_core_and_engage()  # the same lines, nothing new
    assert [line for line in again.lines if line.startswith("Demo checkout link")] == [f"Demo checkout link: {settings.SITE_URL}/c/{link.code}"]
    assert DonationForm.objects.count() == 2 and CheckoutLink.objects.count() == 1

    CheckoutLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    renewed = run_core_and_engage()  # an expired demo link is replaced by a payable one
    fresh = CheckoutLink.objects.exclude(pk=link.pk).get()
    assert fresh.is_payable and f"Demo checkout link: {settings.SITE_URL}/c/{fresh.code}" in renewed.lines

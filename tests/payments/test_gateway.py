"""together/stripe_gateway.py: which key each organisation uses (a sandbox never a
live one), and the webhook signature check over every configured secret."""
from __future__ import annotations

import json
import time

import pytest
from django.test import override_settings

from payments.models import Payment
from tests.payments.helpers import DONOR, connect, make_form, start_form_payment
from tests.support import stripe as fake_stripe
from together import stripe_gateway

pytestmark = pytest.mark.django_db


def _key(client) -> str:
    return client._requestor._options.api_key


def test_a_sandbox_uses_the_test_key_and_a_live_organisation_the_live_key(org, settings):
    assert _key(stripe_gateway.client_for(org.sandbox)) == settings.STRIPE_TEST_SECRET_KEY
    assert _key(stripe_gateway.client_for(org)) == settings.STRIPE_SECRET_KEY
    assert settings.STRIPE_TEST_SECRET_KEY != settings.STRIPE_SECRET_KEY
    assert stripe_gateway.publishable_key_for(org.sandbox) == settings.STRIPE_TEST_PUBLISHABLE_KEY
    assert stripe_gateway.publishable_key_for(org) == settings.STRIPE_PUBLISHABLE_KEY


@pytest.mark.parametrize("live_key", ["sk_live_51Hxyz", "rk_live_51Hxyz", "pk_live_51Hxyz", "not-a-stripe-key"])
def test_a_sandbox_never_uses_a_live_key(org, live_key):
    with override_settings(STRIPE_TEST_SECRET_KEY=live_key, STRIPE_SECRET_KEY="sk_live_platform"):
        with pytest.raises(stripe_gateway.PaymentsMisconfigured, match="sandbox"):
            stripe_gateway.client_for(org.sandbox)
        # The live organisation keeps its own (live) key.
        assert _key(stripe_gateway.client_for(org)) == "sk_live_platform"
    with override_settings(STRIPE_TEST_PUBLISHABLE_KEY="pk_live_51Hxyz"):
        with pytest.raises(stripe_gateway.PaymentsMisconfigured, match="sandbox"):
            stripe_gateway.publishable_key_for(org.sandbox)


def test_a_sandbox_payment_with_a_live_key_configured_is_refused_before_anything_is_stored(org, localstripe):
    sandbox = org.sandbox
    connect(sandbox)
    form = make_form(sandbox)
    with override_settings(STRIPE_TEST_SECRET_KEY="sk_live_51Hxyz"):
        with pytest.raises(stripe_gateway.PaymentsMisconfigured):
            start_form_payment(sandbox, form, 2500)
    assert not Payment.objects.filter(organisation=sandbox).exists()


def test_a_live_organisation_may_not_share_the_sandboxes_key(org):
    with override_settings(STRIPE_SECRET_KEY="sk_test_same", STRIPE_TEST_SECRET_KEY="sk_test_same"):
        with pytest.raises(stripe_gateway.PaymentsMisconfigured, match="same key"):
            stripe_gateway.client_for(org)
        assert _key(stripe_gateway.client_for(org.sandbox)) == "sk_test_same"


def test_missing_keys_are_a_clear_503_not_a_crash(org):
    with override_settings(STRIPE_SECRET_KEY="", STRIPE_TEST_SECRET_KEY=""):
        with pytest.raises(stripe_gateway.PaymentsMisconfigured) as exc:
            stripe_gateway.client_for(org)
        assert exc.value.status_code == 503
        with pytest.raises(stripe_gateway.PaymentsMisconfigured):
            stripe_gateway.client_for(org.sandbox)


def _payload() -> bytes:
    return json.dumps(fake_stripe.event_payload("payment_intent.succeeded", {"id": "pi_test", "object": "payment_intent"})).encode()


def test_construct_event_accepts_every_configured_secret_within_five_minutes():
    payload = _payload()
    with override_settings(STRIPE_WEBHOOK_SECRETS=["whsec_new", "whsec_old"]):
        for secret in ("whsec_new", "whsec_old"):  # rotation: both verify while both are configured
            event = stripe_gateway.construct_event(payload, fake_stripe.signature_header(payload, secret=secret))
            assert event["type"] == "payment_intent.succeeded"
        four_minutes_ago = int(time.time()) - 240
        stripe_gateway.construct_event(payload, fake_stripe.signature_header(payload, secret="whsec_old", timestamp=four_minutes_ago))
        with pytest.raises(stripe_gateway.SignatureInvalid):  # six minutes: outside the tolerance
            stripe_gateway.construct_event(payload, fake_stripe.signature_header(payload, secret="whsec_old",
                                                                                 timestamp=int(time.time()) - 360))
        with pytest.raises(stripe_gateway.SignatureInvalid):
            stripe_gateway.construct_event(payload, fake_stripe.signature_header(payload, secret="whsec_unknown"))
        with pytest.raises(stripe_gateway.SignatureInvalid):
            stripe_gateway.construct_event(payload + b" ", fake_stripe.signature_header(payload, secret="whsec_new"))
        with pytest.raises(stripe_gateway.SignatureInvalid):
            stripe_gateway.construct_event(payload, "")


def test_stripe_refusals_and_outages_map_to_our_errors(org, localstripe):
    with pytest.raises(stripe_gateway.PaymentRefused) as refused:
        stripe_gateway.refund(org, charge_id="ch_doesnotexist", amount_cents=100, idempotency_key="k-" + str(time.time()))
    assert refused.value.status_code == 400 and refused.value.param == "stripe"
    with override_settings(STRIPE_API_BASE="http://127.0.0.1:9"):
        with pytest.raises(stripe_gateway.PaymentGatewayUnavailable) as down:
            stripe_gateway.charge_retrieve(org, charge_id="ch_x")
    assert down.value.status_code == 503

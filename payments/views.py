"""Stripe's webhook and the donor's payment status page. Thin: the services decide."""
from __future__ import annotations

import logging

from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from compliance.services import public_refusal_message
from payments import services
from payments.models import PaymentKind, PaymentStatus
from together import stripe_gateway
from together.exceptions import ApplicationError

log = logging.getLogger("together.payments")


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """`POST /webhooks/stripe`: 200 once the event is stored (processed, a duplicate,
    or a type we ignore); 400 for a bad signature (nothing stored); 503 when Stripe
    could not be reached to re-read the object (Stripe sends the event again)."""
    try:
        event = services.stripe_event_receive(payload=request.body, sig_header=request.headers.get("Stripe-Signature", ""),
                                              request_id=getattr(request, "request_id", ""))
    except stripe_gateway.SignatureInvalid:
        return JsonResponse({"error": {"code": "invalid_signature", "message": "The Stripe-Signature does not match."}},
                            status=400)
    except ApplicationError as exc:
        log.warning("stripe webhook not processed: %s", exc.message)
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=503)
    return JsonResponse({"received": True, "outcome": event.outcome if event else None})


class PayStatusView(View):
    """`GET /pay/<payment_id>`: where Stripe.js sends the donor after confirming. It
    re-reads the payment from Stripe (so the books never wait for the webhook) and
    says what happened: thank you, processing, or why it failed."""

    def get(self, request, payment_id):
        payment = services.payment_get_public(payment_id=payment_id)
        if payment is None:
            raise Http404("No such payment")
        sync_error = None
        if payment.payment_intent_id and payment.status != PaymentStatus.SUCCEEDED and not payment.is_final:
            try:
                payment = services.payment_sync(payment_intent_id=payment.payment_intent_id,
                                                request_id=getattr(request, "request_id", ""))
            except ApplicationError as exc:
                log.warning("payment %s: status page could not sync: %s", payment.id, exc.message)
                sync_error = "We couldn't reach the payment service just now."
        organisation = payment.organisation.live
        parts = [{"name": p.recipient_organisation.live.name, "amount_cents": p.amount_cents}
                 for p in payment.parts.select_related("recipient_organisation__live_organisation").order_by("position")]
        refusal = None
        if payment.status == PaymentStatus.REFUNDED_OVER_CAP:
            refusal = public_refusal_message(_DonorSpecific(), organisation_name=organisation.name)
        response = render(request, "payments/pay_status.html", {
            "payment": payment, "organisation": organisation, "sandbox": payment.organisation.is_sandbox,
            "parts": parts if payment.kind == PaymentKind.SPLIT else [], "refusal": refusal, "sync_error": sync_error,
            "back_url": _back_url(payment), "page_title": "Your gift",
        })
        response["Cache-Control"] = "no-store"
        response["Referrer-Policy"] = "no-referrer"
        return response


class _DonorSpecific(Exception):
    """A refusal that depends on the donor's records (a cap): the page says only the fixed sentence."""

    donor_specific = True


def _back_url(payment) -> str | None:
    if payment.kind == PaymentKind.FORM and payment.form_id:
        return f"/donate/{payment.form.slug}"
    if payment.kind == PaymentKind.SPLIT and payment.recommendation_set_id:
        return f"/give/{payment.recommendation_set_id}"
    if payment.kind == PaymentKind.CHECKOUT_LINK and payment.checkout_link_id:
        return f"/c/{payment.checkout_link.code}"
    return None

"""The donor's own page for a recurring gift: `/plans/<token>`, reached from the
link emailed at sign-up (or sent again by staff), without an account.

The token is the credential (payments/plan_links.py: signed, bound to one plan,
expiring, revoked when the donor cancels). Through it the donor can:

- `GET  /plans/<token>`              see the gift: amount, how often, next date, card, status
- `POST /plans/<token>/change`       change the amount and/or the frequency
- `POST /plans/<token>/card/intent`  start saving a new card (JSON: a SetupIntent's client secret
                                     for Stripe.js confirmCardSetup, static/js/plan_manage.js)
- `POST /plans/<token>/card`         the card is saved: the plan charges it from now on (JSON)
- `POST /plans/<token>/pause`        pause (and `/resume` a pause of their own)
- `GET|POST /plans/<token>/cancel`   confirm, then cancel: the link stops working

A bad or tampered token is a 404; an expired or revoked one a 410 saying what to
do. Every POST has the CSRF token and takes the public POST limit
(together.ratelimit.public_post_take, per client and plan). Every change goes
through the plan services (payments.recurring, via payments.plan_links) with an
actor naming the donor. The pages are never cached and never send a Referer
to another site (the token is in the address). Thin: the rules are in the services.
"""
from __future__ import annotations

import logging

from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from engage.models import Frequency
from engage.selectors import amount_rows
from payments import plan_links
from payments.models import PauseReason, PlanPaymentMethod, PlanStatus
from together import stripe_gateway
from together.csp import stripe_js_url
from together.exceptions import ApplicationError
from together.money import MAX_TEXT_LENGTH, MoneyParseError, parse_amount_cents
from together.ratelimit import public_post_take

log = logging.getLogger("together.payments")

DONE_MESSAGES = {
    "changed": "Your gift is updated.",
    "paused": "Your gift is paused: nothing will be charged until you restart it.",
    "resumed": "Your gift is restarted.",
    "card": "Your new card is saved: your next gifts will be charged to it.",
}
REFUSALS = {
    "invalid": (404, "This link isn't valid",
                ("Please check you copied the whole link from your email. If it still doesn't work, contact the "
                 "organisation you give to and ask them to send you a new one.")),
    "expired": (410, "This link has expired",
                ("For your security, links to manage a regular gift work for {days} days. Use the link in your most "
                 "recent email, or ask {organisation} to send you a new one.")),
    "revoked": (410, "This link no longer works",
                ("A newer link replaced this one, or the gift was cancelled. If you need to change your gift, ask "
                 "{organisation} to send you a new link.")),
}


def _no_store(response):
    response["Cache-Control"] = "no-store"
    # The token never leaves in a Referer to another site. (Not no-referrer: a browser then
    # sends `Origin: null` with the page's own form POSTs, which CSRF rightly refuses.)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _json(body: dict, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return _no_store(response)


class PlanLinkView(View):
    """Resolves the token before anything else; a refusal never names the plan."""

    json_answers = False

    def dispatch(self, request, token, *args, **kwargs):
        try:
            self.plan = plan_links.plan_from_token(token=token)
        except plan_links.LinkRefused as exc:
            return self.refused(request, exc)
        self.token = token
        self.base_url = f"/plans/{token}"
        self.actor = plan_links.donor_actor(self.plan, getattr(request, "request_id", ""))
        return super().dispatch(request, token, *args, **kwargs)

    def refused(self, request, exc: plan_links.LinkRefused):
        status, title, message = REFUSALS[exc.reason]
        organisation = exc.plan.organisation.live.name if exc.plan is not None else "the organisation"
        message = message.format(days=plan_links.link_max_age().days, organisation=organisation)
        if self.json_answers:
            return _json({"errors": {}, "refusal": f"{title}. {message}"}, status)
        return _no_store(render(request, "payments/plan_manage_refused.html",
                                {"title": title, "message": message, "page_title": title}, status=status))

    def limited(self, request):
        """The public POST limit (per client and plan); None when the POST may go on."""
        result = public_post_take(request, scope=f"plan:{self.plan.id}")
        if result.allowed:
            return None
        minutes = max(1, -(-result.retry_after // 60))
        return f"Too many changes from your connection. Please try again in {minutes} minute{'s' if minutes != 1 else ''}."

    # --- the page -------------------------------------------------------------------------

    def page(self, request, *, status: int = 200, errors: dict | None = None, refusal: str | None = None,
             values: dict | None = None, template: str = "payments/plan_manage.html"):
        plan = self.plan
        organisation = plan.organisation
        card = plan_links.plan_card_summary(plan=plan) if plan.payment_method == PlanPaymentMethod.CARD else None
        low, high = plan_links.amount_limits(plan)
        values = values or {}
        chosen_frequency = values.get("frequency") or plan.frequency
        expires = plan_links.token_expires_at(self.token)
        context = {
            "plan": plan, "organisation": organisation.live, "sandbox": organisation.is_sandbox, "base_url": self.base_url,
            "adjective": plan_links.frequency_adjective(plan.frequency), "per": plan_links.frequency_per(plan.frequency),
            "card": card, "is_card": plan.payment_method == PlanPaymentMethod.CARD,
            "can_change": plan.can_change, "can_pause": plan.can_pause, "can_cancel": plan.can_cancel,
            "can_resume": plan_links.donor_can_resume(plan),
            "paused_by_others": plan.status == PlanStatus.PAUSED and plan.pause_reason != PauseReason.DONOR,
            "held_by_cap": plan.held_by_cap, "is_final": plan.is_final,
            "frequency_rows": amount_rows([{"value": f, "label": Frequency(f).label, "checked": f == chosen_frequency}
                                           for f in plan_links.frequencies_for(plan)], per_row=3),
            "amount_value": values.get("amount", f"{plan.amount_cents / 100:.2f}".removesuffix(".00")),
            "minimum_cents": low, "maximum_cents": high,
            "done": DONE_MESSAGES.get(request.GET.get("done", "")), "errors": errors or {}, "refusal": refusal,
            "expires": timezone.localtime(expires) if expires else None,
            "page_title": f"Your {plan_links.frequency_adjective(plan.frequency)} gift",
        }
        if context["is_card"] and plan.can_change:
            stripe_key = stripe_gateway.publishable_key_for(organisation)
            context.update(stripe_js_url=stripe_js_url(request), stripe_key=stripe_key)  # Stripe.js joins this page's CSP
        return _no_store(render(request, template, context, status=status))

    def done(self, what: str):
        return _no_store(HttpResponseRedirect(f"{self.base_url}?done={what}", status=303))


class PlanManageView(PlanLinkView):
    def get(self, request, token):
        return self.page(request)


class PlanChangeView(PlanLinkView):
    def post(self, request, token):
        limited = self.limited(request)
        if limited:
            return self.page(request, status=429, refusal=limited)
        errors: dict[str, str] = {}
        text = (request.POST.get("amount") or "").strip()
        amount_cents = None
        if not text or len(text) > MAX_TEXT_LENGTH:
            errors["amount"] = "Enter an amount in dollars, e.g. 25 or 25.50."
        else:
            try:
                amount_cents = parse_amount_cents(text)
            except MoneyParseError as exc:
                errors["amount"] = exc.message
        frequency = (request.POST.get("frequency") or "").strip().upper() or None
        values = {"amount": text[:MAX_TEXT_LENGTH], "frequency": frequency}
        if not errors:
            try:
                plan_links.plan_donor_change(plan=self.plan, actor=self.actor, amount_cents=amount_cents, frequency=frequency)
            except ApplicationError as exc:
                if exc.param in ("amount", "amount_cents"):
                    errors["amount"] = exc.message
                elif exc.param == "frequency":
                    errors["frequency"] = exc.message
                else:
                    return self.page(request, status=400, refusal=exc.message, values=values)
        if errors:
            return self.page(request, status=400, errors=errors, values=values,
                             refusal="Your gift was not changed: please check the highlighted details.")
        return self.done("changed")


class PlanPauseView(PlanLinkView):
    def post(self, request, token):
        limited = self.limited(request)
        if limited:
            return self.page(request, status=429, refusal=limited)
        try:
            plan_links.plan_donor_pause(plan=self.plan, actor=self.actor)
        except ApplicationError as exc:
            return self.page(request, status=400, refusal=exc.message)
        return self.done("paused")


class PlanResumeView(PlanLinkView):
    def post(self, request, token):
        limited = self.limited(request)
        if limited:
            return self.page(request, status=429, refusal=limited)
        try:
            plan_links.plan_donor_resume(plan=self.plan, actor=self.actor)
        except ApplicationError as exc:
            return self.page(request, status=400, refusal=exc.message)
        return self.done("resumed")


class PlanCancelView(PlanLinkView):
    def get(self, request, token):
        if not self.plan.can_cancel:
            return self.page(request, status=409, refusal=self.plan.refusals.get("cancel"))
        return self.page(request, template="payments/plan_manage_cancel.html")

    def post(self, request, token):
        limited = self.limited(request)
        if limited:
            return self.page(request, status=429, refusal=limited, template="payments/plan_manage_cancel.html")
        try:
            plan = plan_links.plan_donor_cancel(plan=self.plan, actor=self.actor)
        except ApplicationError as exc:
            return self.page(request, status=400, refusal=exc.message)
        # The link is revoked now: the answer is the last page it shows.
        return _no_store(render(request, "payments/plan_manage_done.html", {
            "plan": plan, "organisation": plan.organisation.live, "sandbox": plan.organisation.is_sandbox,
            "adjective": plan_links.frequency_adjective(plan.frequency), "page_title": "Your gift is cancelled",
        }))


class PlanCardIntentView(PlanLinkView):
    json_answers = True

    def post(self, request, token):
        limited = self.limited(request)
        if limited:
            return _json({"errors": {}, "refusal": limited}, 429)
        try:
            client_secret = plan_links.plan_card_setup_start(plan=self.plan)
        except ApplicationError as exc:
            return _json({"errors": {}, "refusal": exc.message}, 400 if exc.code == "validation_failed" else 503)
        return _json({"client_secret": client_secret})


class PlanCardSaveView(PlanLinkView):
    json_answers = True

    def post(self, request, token):
        try:
            plan_links.plan_card_setup_finish(plan=self.plan, actor=self.actor,
                                              setup_intent_id=(request.POST.get("setup_intent") or "").strip())
        except ApplicationError as exc:
            return _json({"errors": {}, "refusal": exc.message}, 400 if exc.code == "validation_failed" else 503)
        return _json({"return_url": f"{self.base_url}?done=card"})

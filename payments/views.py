"""Stripe's webhook and the donor's payment status page. Thin: the services decide."""
from __future__ import annotations

import logging

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import date as date_filter, title
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from compliance.selectors import revenue_code_suggestions
from compliance.services import public_refusal_message
from donations.models import Donor
from engage.forms import dollars_text
from organisations.session import DashboardMixin
from payments import recurring, selectors, services
from payments.api.filters import RecurringPlanFilterSet
from payments.forms import ManualPlanForm, PlanAmountForm, PlanCancelForm, PlanNextDateForm, PlanPauseForm
from engage.models import Frequency
from payments.models import PaymentKind, PaymentStatus, PlanPaymentMethod, PlanStatus, RecurringPlan
from payments.plan_links import plan_manage_link_send
from together import charts, stripe_gateway
from together.dashboard import DashboardPage, call_service
from together.exceptions import ApplicationError
from together.templatetags.humanize_cents import dollars

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


# --- the dashboard's Recurring pages (issue 17) ------------------------------------------------
# Thin: every rule (what a plan may do now, amounts, dates) is in payments/recurring.py;
# a refusal lands beside its field or as a message. ADMIN and EDITOR act; VIEWER reads.

PLAN_ACTIONS = ("pause", "resume", "cancel", "amount", "next_date", "resend_link", "confirm_gift", "miss_gift")


def _recurring_chart(months: list[dict]) -> charts.Chart:
    return charts.columns(
        chart_id="recurring-revenue", title="Recurring revenue by month",
        description=(f"What recurring plans' gifts brought in (counted) per month, {months[0]['month']:%B %Y} to "
                     f"{months[-1]['month']:%B %Y}: {dollars(sum(m['total_cents'] for m in months))} in all."),
        categories=[f"{m['month']:%b %y}" for m in months],
        series=[{"label": "Received", "tone": "recurring", "values": [m["total_cents"] for m in months]}],
        fmt=dollars, count_label="Gifts", counts=[m["gifts"] for m in months], labels=charts.month_labels([m["month"] for m in months]))


# What a row of the plans table reads (the template's fields, the keyset's created_at):
# not the donor's notes, metadata, custom fields or search text, nor the plan's Stripe
# and tracking fields.
PLAN_ROW_FIELDS = ("id", "created_at", "status", "amount_cents", "currency", "frequency", "payment_method", "next_bill_date",
                   "pause_reason", "failure_count", "retry_at", "payments_made", "max_payments",
                   "donor_id", "donor__id", "donor__first_name", "donor__last_name", "donor__organisation_name", "donor__email")


def _plan_rows(plans) -> list[dict]:
    """The plans table's cells as text, formatted here with the filters the row markup
    used (date, title, dollars): the template's per-row lookups, filters and URL tags
    cost 5 of the page's ~25 ms on the bench; these dicts render in 1."""
    rows = []
    for p in plans:
        if p.held_by_cap:
            note = "Donor cap reached"
        elif p.pause_reason:
            note = title(p.pause_reason)
        elif p.is_failing:
            note = f"Failing: retry {date_filter(p.retry_at, 'j M')}"
        else:
            note = ""
        rows.append({
            "id": p.id, "status": p.status, "url": reverse("recurring-detail", args=[p.id]),
            "donor_name": p.donor.display_name, "donor_email": p.donor.email or "",
            "amount": dollars(p.amount_cents), "frequency": p.get_frequency_display(), "status_label": p.get_status_display(),
            "note": note, "next_bill": date_filter(p.next_bill_date, "j M Y") if p.next_bill_date else "",
            "monthly": dollars(p.monthly_cents) if p.status == PlanStatus.ACTIVE else "",
            "method": "Card" if p.payment_method == PlanPaymentMethod.CARD else "Standing order",
            "paid": f"{p.payments_made} / {p.max_payments}" if p.max_payments else str(p.payments_made),
        })
    return rows


class RecurringListView(DashboardMixin, View):
    """`/recurring`: every plan, filtered (status, frequency, payment method, donor, a
    next-bill window), newest first in keyset pages; monthly recurring revenue; the
    plans needing attention."""

    def get(self, request):
        organisation = request.organisation
        plans = self.scoped(RecurringPlan).select_related("donor").only(*PLAN_ROW_FIELDS)
        page = DashboardPage(request, plans, filterset_class=RecurringPlanFilterSet)
        donor = None
        if request.GET.get("donor_id"):
            donor = self.scoped(Donor).filter(pk=request.GET["donor_id"]).first()
        filters = {k: v for k, v in request.GET.items() if k not in ("starting_after", "ending_before", "limit") and v}
        overview = selectors.plan_overview(organisation=organisation)
        return render(request, "payments/recurring_list.html", {
            "nav": "recurring", "page_title": "Recurring", "g": request.GET, "filtered": bool(filters),
            "statuses": PlanStatus.choices, "frequencies": Frequency.choices, "methods": PlanPaymentMethod.choices,
            "counts": overview["counts"], "mrr": overview["mrr"],
            "revenue_chart": _recurring_chart(selectors.recurring_revenue_by_month(organisation=organisation, today=timezone.localdate())),
            "alerts": recurring.plan_alerts(organisation=organisation, limit=10),
            "donor": donor, **page.context(), "plan_rows": _plan_rows(page.rows),
        })


class RecurringDetailView(DashboardMixin, View):
    """`/recurring/<id>`: one plan, its charges and history, and (ADMIN, EDITOR) its actions."""

    def plan(self, pk) -> RecurringPlan:
        return self.get_scoped_or_404(RecurringPlan.objects.select_related("donor", "campaign", "form"), pk)

    def page(self, request, plan, *, forms=None, status=200):
        organisation = request.organisation
        forms = forms or {}
        today = recurring.organisation_today(organisation)
        return render(request, "payments/recurring_detail.html", {
            "nav": "recurring", "page_title": f"Plan of {plan.donor.display_name}", "plan": plan, "today": today,
            "charges": selectors.plan_charges(organisation=organisation, plan=plan),
            "attempts": selectors.plan_charge_attempts(organisation=organisation, plan=plan),
            "history": selectors.plan_history(organisation=organisation, plan=plan),
            "amount_form": forms.get("amount") or PlanAmountForm(initial={"amount": dollars_text(plan.amount_cents)}),
            "date_form": forms.get("next_date") or PlanNextDateForm(initial={"next_bill_date": plan.next_bill_date}),
            "pause_form": forms.get("pause") or PlanPauseForm(),
            "cancel_form": forms.get("cancel") or PlanCancelForm(),
            "open_action": next(iter(forms), None),
        }, status=status)

    def get(self, request, pk):
        return self.page(request, self.plan(pk))

    def post(self, request, pk):
        plan = self.plan(pk)
        action = request.POST.get("action", "")
        if action not in PLAN_ACTIONS:
            messages.error(request, "Unknown action.")
            return redirect("recurring-detail", plan.id)
        common = {"organisation": request.organisation, "actor": request.actor}
        form_class = {"amount": PlanAmountForm, "next_date": PlanNextDateForm, "pause": PlanPauseForm,
                      "cancel": PlanCancelForm}.get(action)
        if form_class is not None:
            form = form_class(request.POST)
            done = None
            if form.is_valid():
                if action == "amount" or action == "next_date":
                    done = call_service(form, recurring.plan_update, plan_id=plan.id, **form.service_kwargs(), **common)
                elif action == "pause":
                    done = call_service(form, recurring.plan_pause, plan_id=plan.id, reason="STAFF",
                                        detail=form.cleaned_data["detail"], **common)
                else:
                    done = call_service(form, recurring.plan_cancel, plan_id=plan.id, reason=form.cleaned_data["reason"],
                                        **common)
            if done is None:
                plan.refresh_from_db()
                return self.page(request, plan, forms={action: form}, status=400)
            messages.success(request, _DONE[action](done))
            return redirect("recurring-detail", plan.id)
        try:
            if action == "resume":
                done = recurring.plan_resume(plan_id=plan.id, **common)
                messages.success(request, _DONE["resume"](done))
            elif action == "resend_link":
                plan_manage_link_send(plan_id=plan.id, **common)
                messages.success(request, f"Management link sent to {plan.donor.email or 'the donor'}.")
            elif action == "confirm_gift":
                recurring.plan_expected_gift_confirm(donation_id=request.POST.get("donation_id", ""), **common)
                messages.success(request, "Expected gift confirmed: the standing order's money arrived.")
            elif action == "miss_gift":
                recurring.plan_expected_gift_miss(donation_id=request.POST.get("donation_id", ""), **common)
                messages.success(request, "Expected gift marked missed.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("recurring-detail", plan.id)


def _next(plan) -> str:
    return f"next bill date {plan.next_bill_date:%-d %b %Y}" if plan.next_bill_date else "nothing more to bill"


_DONE = {
    "pause": lambda plan: "Plan paused: nothing is billed until it is resumed.",
    "resume": lambda plan: f"Plan resumed ({_next(plan)})." if plan.status == PlanStatus.ACTIVE
    else f"Plan {plan.get_status_display().lower()}.",
    "cancel": lambda plan: "Plan cancelled: nothing more is billed.",
    "amount": lambda plan: f"Amount changed to ${plan.amount_cents / 100:,.2f} from the next charge ({_next(plan)}).",
    "next_date": lambda plan: f"Schedule moved: {_next(plan)}.",
}


class DonorPlansFragmentView(DashboardMixin, View):
    """`/recurring/donor/<id>/fragment`: the donor page's plans and its *New manual
    plan* form (loaded with htmx by templates/donations/donor_detail.html; donations
    never imports payments). A POST creates a MANUAL plan through plan_create."""

    def page(self, request, donor, form, *, created=None, status=200):
        organisation = request.organisation
        return render(request, "payments/recurring_donor_fragment.html", {
            "donor": donor, "plans": selectors.donor_plans(organisation=organisation, donor_id=donor.id), "form": form,
            "created": created, "revenue_codes": revenue_code_suggestions(organisation=organisation),
            "open_form": form.is_bound and created is None,
        }, status=status)

    def new_form(self, request, data=None):
        return ManualPlanForm(data, organisation=request.organisation,
                              initial={"start_date": recurring.organisation_today(request.organisation)})

    def get(self, request, donor_id):
        donor = self.get_scoped_or_404(Donor, donor_id)
        return self.page(request, donor, self.new_form(request))

    def post(self, request, donor_id):
        donor = self.get_scoped_or_404(Donor, donor_id)
        form = self.new_form(request, request.POST)
        plan = None
        if form.is_valid():
            plan = call_service(form, recurring.plan_create, organisation=request.organisation, actor=request.actor,
                                donor_id=donor.id, **form.service_kwargs())
        if plan is None:
            # htmx swaps only 2xx answers: the form comes back with its errors beside the fields.
            return self.page(request, donor, form, status=200 if request.htmx else 400)
        if not request.htmx:
            messages.success(request, "Manual plan created.")
            return redirect("recurring-detail", plan.id)
        return self.page(request, donor, self.new_form(request), created=plan)

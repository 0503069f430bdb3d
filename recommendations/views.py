"""Pages: the recipient's distribution settings, the public invite page, the
public giving form and the staff page that records offline split gifts.
Thin: every rule is in recommendations/services.py."""
from __future__ import annotations

import logging
import re
import secrets

from django.contrib.auth import login
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View

from compliance.services import public_refusal_message
from donations.crm import source_fields_from_query
from organisations.models import Role
from organisations.session import DashboardMixin
from recommendations import selectors, services
from recommendations.forms import (
    DonorDetailsForm, IntroductionSignupForm, NewOrganisationForm, OfflineGiftForm, cents_to_dollars, dollars_to_cents,
)
from recommendations.models import AmountMode, RecommendationSet, SplitGift, SplitGiftStatus
from together.csp import frameable_by_self, stripe_js_url
from together.dashboard import add_service_error, call_service
from together.exceptions import ApplicationError
from together.ratelimit import public_post_take


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


def _public_post_limited(request, *, scope: str, organisation, back_url: str):
    """The per-client limit on anonymous POSTs (together.ratelimit): None when
    admitted, else the 429 page with Retry-After."""
    result = public_post_take(request, scope=scope)
    if result.allowed:
        return None
    minutes = max(1, -(-result.retry_after // 60))
    response = render(request, "recommendations/rate_limited.html", {
        "organisation": organisation, "retry_after": result.retry_after, "minutes": minutes, "back_url": back_url,
    }, status=429)
    response["Retry-After"] = str(result.retry_after)
    return _no_store(response)


# --- /settings/engage/distribution ---------------------------------------------------

class DistributionSettingsView(DashboardMixin, View):
    """A recipient organisation's passphrase and the organisations linked to it.
    Everyone may look; only ADMINs change anything (403 otherwise)."""

    required_role = Role.VIEWER
    write_role = Role.ADMIN
    template = "recommendations/distribution.html"

    def context(self, request, **extra):
        organisation = request.organisation
        return {
            "organisation": organisation,
            "role": request.role,
            "is_admin": request.role == Role.ADMIN,
            "passphrase": selectors.passphrase_active(organisation=organisation),
            "links": selectors.links_to_recipient(recipient=organisation),
            "entropy_bits": int(services.passphrase_entropy_bits()),
            **extra,
        }

    def get(self, request):
        return _no_store(render(request, self.template, self.context(request)))

    def post(self, request):
        organisation, actor = request.organisation, request.actor
        action = request.POST.get("action")
        extra: dict = {}
        try:
            if action in ("generate", "rotate"):
                created = services.distribution_passphrase_generate(organisation=organisation, actor=actor)
                extra["new_passphrase"] = created.plaintext
            elif action == "revoke":
                services.distribution_passphrase_revoke(organisation=organisation, actor=actor)
                extra["notice"] = "The passphrase was revoked. Existing links keep working."
            elif action in ("deactivate_link", "reactivate_link"):
                services.recipient_link_set_active_by_recipient(
                    recipient=organisation, actor=actor, link_id=request.POST.get("link_id", ""), active=action == "reactivate_link")
                extra["notice"] = "Link deactivated." if action == "deactivate_link" else "Link reactivated."
            else:
                extra["error"] = "Unknown action."
        except ApplicationError as exc:
            extra["error"] = exc.message
        status = 400 if "error" in extra else 200
        return _no_store(render(request, self.template, self.context(request, **extra), status=status))


# --- /introductions/<token> ------------------------------------------------------------

class IntroductionInviteView(View):
    """The public invite page of an introduction: sign in or up, choose one of your
    organisations (accept), then confirm the link."""

    template = "recommendations/introduction.html"

    def get_introduction(self, token):
        introduction = services.introduction_get_by_token(token=token)
        if introduction is None:
            raise Http404("This invite link is not valid.")
        services.introduction_expire_if_due(introduction_id=introduction.id, request_id=getattr(self.request, "request_id", ""))
        introduction.refresh_from_db()
        return introduction

    def render_page(self, request, introduction, *, status=200, **extra):
        user = request.user
        eligible = services.introduction_eligible_organisations(introduction=introduction, user=user) if user.is_authenticated else []
        can_link = (
            introduction.can_link and user.is_authenticated
            and introduction.accepted_organisation is not None
            and any(o.id == introduction.accepted_organisation_id for o in
                    services.introduction_eligible_organisations(introduction=introduction, user=user))
        )
        context = {
            "introduction": introduction,
            "inviter": introduction.organisation.live,
            "is_sandbox": introduction.organisation.is_sandbox,
            "eligible": eligible,
            "can_link": can_link,
            "signup_form": extra.pop("signup_form", None) or IntroductionSignupForm(initial={
                "email": introduction.invitee_email, "organisation_name": introduction.invitee_org_name_hint}),
            "new_org_form": extra.pop("new_org_form", None) or NewOrganisationForm(initial={
                "organisation_name": introduction.invitee_org_name_hint}),
            "login_url": f"/login/?next={request.path}",
            **extra,
        }
        return _no_store(render(request, self.template, context, status=status))

    def get(self, request, token):
        introduction = self.get_introduction(token)
        introduction = services.introduction_view(introduction_id=introduction.id, request_id=getattr(request, "request_id", ""))
        return self.render_page(request, introduction)

    def post(self, request, token):
        introduction = self.get_introduction(token)
        action = request.POST.get("action")
        request_id = getattr(request, "request_id", "")
        if action == "signup" and not request.user.is_authenticated:
            limited = _public_post_limited(request, scope=f"signup:{introduction.organisation_id}",
                                           organisation=introduction.organisation.live, back_url=request.path)
            return limited or self.signup(request, introduction)
        if not request.user.is_authenticated:
            return self.render_page(request, introduction, status=403, error="Sign in first.")
        if action == "create_org":
            form = NewOrganisationForm(request.POST)
            if not form.is_valid():
                return self.render_page(request, introduction, status=400, new_org_form=form)
            try:
                organisation = services.invitee_organisation_create(user=request.user, name=form.cleaned_data["organisation_name"])
            except ApplicationError as exc:
                add_service_error(form, exc)
                return self.render_page(request, introduction, status=400, new_org_form=form)
            return self.render_page(request, introduction, notice=f"{organisation.name} was created. Choose it below.")
        try:
            if action == "accept":
                chosen = next((o for o in services.introduction_eligible_organisations(introduction=introduction, user=request.user)
                               if o.id == request.POST.get("organisation_id")), None)
                if chosen is None:
                    return self.render_page(request, introduction, status=400, error="Choose one of your organisations.")
                introduction = services.introduction_accept(introduction_id=introduction.id, user=request.user,
                                                            recipient_organisation=chosen, request_id=request_id)
                return self.render_page(request, introduction, notice=f"Accepted for {chosen.name}.")
            if action == "link":
                services.introduction_link(introduction_id=introduction.id, user=request.user, request_id=request_id)
                introduction.refresh_from_db()
                return self.render_page(request, introduction)
        except ApplicationError as exc:
            introduction.refresh_from_db()
            return self.render_page(request, introduction, status=400, error=exc.message)
        return self.render_page(request, introduction, status=400, error="Unknown action.")

    def signup(self, request, introduction):
        form = IntroductionSignupForm(request.POST)
        if form.is_valid():
            user = call_service(form, services.invitee_signup, **form.cleaned_data)
            if user is not None:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return self.render_page(request, introduction,
                                        notice="Your account and organisation were created. Choose it below to accept.")
        return self.render_page(request, introduction, status=400, signup_form=form)


# --- /give/<id> --------------------------------------------------------------------------

log = logging.getLogger("together.recommendations")


def _giving_form_load(set_id):
    recommendation_set = selectors.public_set_get(set_id=set_id)
    if recommendation_set is None:
        raise Http404("No such giving form.")
    allocations = selectors.public_set_allocations(recommendation_set=recommendation_set)
    return recommendation_set, allocations


@method_decorator(frameable_by_self, name="dispatch")  # the set editor previews it in a frame of our own
class GivingFormView(View):
    """The public giving form of a recommendation set, in all three modes. When
    the recommending organisation and every recipient are connected to Stripe it
    takes a card payment for the total (static/js/pay.js posts the form to
    GivingFormIntentView and confirms the PaymentIntent with Stripe.js);
    otherwise it records a pledge."""

    template = "recommendations/give.html"

    def load(self, set_id):
        return _giving_form_load(set_id)

    def render_page(self, request, recommendation_set, allocations, form, *, status=200, **extra):
        from django.urls import reverse

        from together.stripe_gateway import publishable_key_for

        rows = [{
            "allocation": a,
            "name": a.link.recipient_organisation.live.name,
            "fixed": cents_to_dollars(a.amount_cents),
            "amount_cents": a.amount_cents,
            "field": form[DonorDetailsForm.amount_field(a)] if recommendation_set.amount_mode != AmountMode.FIXED else None,
        } for a in allocations]
        available = recommendation_set.is_active and bool(allocations) and all(a.link.is_active for a in allocations)
        card = available and selectors.giving_form_takes_cards(recommendation_set=recommendation_set, allocations=allocations)
        context = {
            "set": recommendation_set, "organisation": recommendation_set.organisation.live, "rows": rows, "form": form,
            "mode": recommendation_set.amount_mode, "available": available, "card": card,
            "fixed_total": cents_to_dollars(sum(a.amount_cents for a in allocations)),
            "donor_fields": [form[name] for name in DonorDetailsForm.DONOR_FIELDS],
            **extra,
        }
        if card:
            try:
                stripe_key = publishable_key_for(recommendation_set.organisation)
            except ApplicationError as exc:  # the platform's Stripe keys are not set: no card form, no pledge either
                log.error("giving form %s: card payments misconfigured: %s", recommendation_set.id, exc.message)
                context.update(card=False, card_down=True)
                return _no_store(render(request, self.template, context, status=503))
            context.update({
                "stripe_key": stripe_key,
                "stripe_js_url": stripe_js_url(request),  # Stripe.js joins this page's policy (together.csp)
                "intent_url": reverse("give-intent", args=[recommendation_set.id]),
                # The PaymentIntent's idempotency key for this visit: a retry (a declined card, a
                # double click) reuses the same intent, never a second charge.
                "attempt_key": secrets.token_urlsafe(24),
                "tracking": source_fields_from_query(request.GET),  # ?utm_source=…&ref=…&source=… onto the gifts
            })
        response = render(request, self.template, context, status=status)
        return _no_store(response) if card else response

    def get(self, request, set_id):
        recommendation_set, allocations = self.load(set_id)
        form = DonorDetailsForm(allocations=allocations, amount_mode=recommendation_set.amount_mode)
        status = 200 if recommendation_set.is_active else 410
        return self.render_page(request, recommendation_set, allocations, form, status=status)

    def post(self, request, set_id):
        recommendation_set, allocations = self.load(set_id)
        form = DonorDetailsForm(request.POST, allocations=allocations, amount_mode=recommendation_set.amount_mode)
        if not recommendation_set.is_active:
            return self.render_page(request, recommendation_set, allocations, form, status=410)
        organisation = recommendation_set.organisation.live
        if selectors.giving_form_takes_cards(recommendation_set=recommendation_set, allocations=allocations):
            # This form takes cards through pay.js (POST …/intent); a plain POST came from a browser
            # without JavaScript: nothing is recorded, and no pledge is taken in place of a payment.
            return self.render_page(request, recommendation_set, allocations, form, status=400, needs_script=True)
        limited = _public_post_limited(request, scope=f"org:{organisation.id}", organisation=organisation, back_url=request.path)
        if limited:
            return limited
        if form.is_valid():
            try:
                gift = services.recommendation_split_pledge(recommendation_set_id=recommendation_set.id, donor=form.donor(),
                                                            amounts=form.cleaned_data["amounts"],
                                                            request_id=getattr(request, "request_id", ""))
            except ApplicationError as exc:
                # A refusal that depends on the donor's records (a cap) is one fixed
                # sentence here, whoever the email is; the detail is for staff only.
                refusal = public_refusal_message(exc, organisation_name=organisation.name)
                if refusal:
                    return self.render_page(request, recommendation_set, allocations, form, status=400, refusal=refusal)
                form.add_error(form.field_for_param(exc.param), exc.message)
            else:
                parts = list(gift.parts.select_related("recipient_organisation").order_by("position"))
                return render(request, "recommendations/give_done.html", {
                    "set": recommendation_set, "organisation": recommendation_set.organisation.live, "gift": gift,
                    "parts": [{"name": p.recipient_organisation.live.name, "amount": cents_to_dollars(p.amount_cents)} for p in parts],
                    "total": cents_to_dollars(gift.total_cents),
                })
        return self.render_page(request, recommendation_set, allocations, form, status=400)


ATTEMPT_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")


class GivingFormIntentView(View):
    """POST /give/<id>/intent (static/js/pay.js): validate the gift as the form's
    POST does, then start the card payment for the total
    (recommendations.services.recommendation_split_payment_start). JSON:
    200 {client_secret, return_url}; 400/410/429/503 {errors: {field: [messages]},
    refusal} (`refusal`: what concerns the whole gift, e.g. a cap's public sentence)."""

    def post(self, request, set_id):
        from django.urls import reverse

        recommendation_set, allocations = _giving_form_load(set_id)
        organisation = recommendation_set.organisation.live
        if not recommendation_set.is_active:
            return _json_refusal("This giving form is closed.", status=410)
        if not selectors.giving_form_takes_cards(recommendation_set=recommendation_set, allocations=allocations):
            return _json_refusal(services.CARD_UNAVAILABLE, status=400)
        result = public_post_take(request, scope=f"org:{organisation.id}")
        if not result.allowed:
            minutes = max(1, -(-result.retry_after // 60))
            response = _json_refusal(
                f"This form was sent too many times from your connection in a short while. Nothing was charged. "
                f"Please try again in about {minutes} minute{'s' if minutes != 1 else ''}.", status=429)
            response["Retry-After"] = str(result.retry_after)
            return response
        attempt_key = request.POST.get("attempt_key", "")
        if not ATTEMPT_KEY_RE.fullmatch(attempt_key):
            return _json_refusal("This page has expired: reload it and try again. Nothing was charged.", status=400)
        form = DonorDetailsForm(request.POST, allocations=allocations, amount_mode=recommendation_set.amount_mode)
        if not form.is_valid():
            return _json_refusal(None, status=400, errors={name: [str(e) for e in errors] for name, errors in form.errors.items()})
        try:
            payment = services.recommendation_split_payment_start(
                recommendation_set_id=recommendation_set.id, donor=form.donor(), amounts=form.cleaned_data["amounts"],
                attempt_key=attempt_key, request_id=getattr(request, "request_id", ""),
                tracking=source_fields_from_query(request.POST))
        except ApplicationError as exc:
            # A refusal that depends on the donor's records (a cap) is one fixed sentence
            # here, whoever the email is; the detail is for staff only.
            refusal = public_refusal_message(exc, organisation_name=organisation.name)
            status = 503 if exc.status_code == 503 else 400
            if refusal:
                return _json_refusal(refusal, status=status)
            field = form.field_for_param(exc.param)
            if field is None:
                return _json_refusal(exc.message, status=status)
            return _json_refusal(None, status=status, errors={field: [exc.message]})
        return _no_store(JsonResponse({"client_secret": payment.client_secret,
                                       "return_url": reverse("pay-status", args=[payment.id])}))


def _json_refusal(refusal: str | None, *, status: int, errors: dict | None = None):
    body: dict = {"errors": errors or {}}
    if refusal:
        body["refusal"] = refusal
    return _no_store(JsonResponse(body, status=status))


# --- /engage/recommendation-sets ------------------------------------------------------

class RecommendationSetListView(DashboardMixin, View):
    required_role = Role.VIEWER

    def get(self, request):
        return render(request, "recommendations/sets.html", {
            "organisation": request.organisation, "sets": selectors.sets_for_dashboard(organisation=request.organisation),
        })


class RecommendationSetGiftsView(DashboardMixin, View):
    """A set's gifts, and the form to record a split gift received offline
    (ADMIN or EDITOR) through the same service as every other split."""

    required_role = Role.VIEWER
    write_role = Role.EDITOR
    template = "recommendations/set_gifts.html"

    def load(self, request, set_id):
        recommendation_set = self.get_scoped_or_404(RecommendationSet.objects.select_related("organisation"), set_id)
        return recommendation_set, selectors.public_set_allocations(recommendation_set=recommendation_set)

    def render_page(self, request, recommendation_set, allocations, form, *, status=200, **extra):
        rows = [{
            "name": a.link.recipient_organisation.live.name, "fixed": cents_to_dollars(a.amount_cents),
            "field": form[DonorDetailsForm.amount_field(a)] if recommendation_set.amount_mode != AmountMode.FIXED else None,
        } for a in allocations]
        return render(request, self.template, {
            "organisation": request.organisation, "set": recommendation_set, "rows": rows, "form": form,
            "can_record": request.role in (Role.ADMIN, Role.EDITOR),
            "gifts": selectors.split_gifts_for_set(organisation=request.organisation, set_id=recommendation_set.id),
            "card_gifts": selectors.card_gifts_for_set(organisation=request.organisation, set_id=recommendation_set.id),
            "donor_fields": [form[name] for name in DonorDetailsForm.DONOR_FIELDS],
            **extra,
        }, status=status)

    def initial_for(self, request, recommendation_set, allocations) -> dict:
        initial = {"donation_date": timezone.localdate(), "country": "AU"}
        pledge_id = request.GET.get("pledge")
        if pledge_id:
            pledge = self.scoped(SplitGift).filter(
                pk=pledge_id, recommendation_set=recommendation_set, status=SplitGiftStatus.PLEDGED).first()
            if pledge is not None:
                initial.update(pledge.donor_details)
                initial["pledge_id"] = pledge.id
                by_position = {p.position: p.amount_cents for p in pledge.parts.all()}
                for a in allocations:
                    initial[DonorDetailsForm.amount_field(a)] = cents_to_dollars(by_position.get(a.position, 0))
        return initial

    def get(self, request, set_id):
        recommendation_set, allocations = self.load(request, set_id)
        form = OfflineGiftForm(initial=self.initial_for(request, recommendation_set, allocations), allocations=allocations,
                               amount_mode=recommendation_set.amount_mode)
        return self.render_page(request, recommendation_set, allocations, form)

    def post(self, request, set_id):
        recommendation_set, allocations = self.load(request, set_id)
        form = OfflineGiftForm(request.POST, allocations=allocations, amount_mode=recommendation_set.amount_mode)
        if form.is_valid():
            try:
                gift = services.recommendation_split_record(
                    organisation=request.organisation, actor=request.actor, recommendation_set_id=recommendation_set.id,
                    donor=form.donor(), amounts=form.cleaned_data["amounts"], donation_date=form.cleaned_data["donation_date"],
                    payment_method=form.cleaned_data["payment_method"], payment_reference=form.cleaned_data["payment_reference"],
                    pledge_id=form.cleaned_data.get("pledge_id") or None,
                )
            except ApplicationError as exc:
                form.add_error(form.field_for_param(exc.param), exc.message)
            else:
                fresh = OfflineGiftForm(initial={"donation_date": timezone.localdate(), "country": "AU"}, allocations=allocations,
                                        amount_mode=recommendation_set.amount_mode)
                return self.render_page(request, recommendation_set, allocations, fresh,
                                        notice=f"Recorded gift {gift.id}: ${cents_to_dollars(gift.total_cents)} across "
                                               f"{gift.parts.count()} recipient(s), in each recipient's books.")
        return self.render_page(request, recommendation_set, allocations, form, status=400)


# --- /engage/recommendation-sets/new, /<id>/edit --------------------------------------------

class RecommendationSetEditView(DashboardMixin, View):
    """Build a set in the dashboard: choose linked recipients, order them, set
    amounts per mode; the same services as the API (POST/PATCH)."""

    required_role = Role.EDITOR
    write_role = Role.EDITOR
    template = "recommendations/set_form.html"

    def load(self, request, set_id):
        if not set_id:
            return None, {}
        recommendation_set = self.get_scoped_or_404(RecommendationSet.objects.select_related("organisation"), set_id)
        current = {a.link_id: a for a in selectors.public_set_allocations(recommendation_set=recommendation_set)}
        return recommendation_set, current

    def rows(self, request, current, data=None):
        links = selectors.links_for_set_editor(organisation=request.organisation)
        rows = []
        for index, link in enumerate(links):
            allocation = current.get(link.id)
            if data is not None:
                included = data.get(f"include-{link.id}") == "on"
                position = data.get(f"position-{link.id}", "")
                amount = data.get(f"amount-{link.id}", "")
            else:
                included = allocation is not None
                position = str(allocation.position + 1) if allocation else str(len(current) + index + 1)
                amount = cents_to_dollars(allocation.amount_cents) if allocation else ""
            rows.append({"link": link, "name": link.recipient_organisation.live.name, "included": included,
                         "position": position, "amount": amount})
        return rows

    def render_page(self, request, recommendation_set, rows, values, *, errors=(), status=200):
        return render(request, self.template, {
            "set": recommendation_set, "rows": rows, "values": values, "errors": errors, "modes": AmountMode.choices,
            "nav": "sets", "page_title": recommendation_set.name if recommendation_set else "New recommendation set",
        }, status=status)

    def get(self, request, set_id=None):
        recommendation_set, current = self.load(request, set_id)
        values = {"name": recommendation_set.name if recommendation_set else "",
                  "description": recommendation_set.description if recommendation_set else "",
                  "amount_mode": recommendation_set.amount_mode if recommendation_set else AmountMode.FIXED}
        return self.render_page(request, recommendation_set, self.rows(request, current), values)

    def post(self, request, set_id=None):
        from django.contrib import messages
        from django.shortcuts import redirect

        recommendation_set, current = self.load(request, set_id)
        rows = self.rows(request, current, request.POST)
        values = {k: request.POST.get(k, "") for k in ("name", "description", "amount_mode")}
        errors = []
        chosen = []
        for row in rows:
            if not row["included"]:
                continue
            try:
                position = int(row["position"])
            except ValueError:
                errors.append(f"{row['name']}: the order must be a whole number.")
                continue
            cents = dollars_to_cents(row["amount"]) if values["amount_mode"] != AmountMode.OPEN else 0
            if cents is None:
                errors.append(f"{row['name']}: enter the amount in dollars, e.g. 250 or 250.50.")
                continue
            chosen.append((position, row, cents))
        chosen.sort(key=lambda item: item[0])
        allocations = [{"recipient_org_account_link_id": row["link"].id, "amount_cents": cents} for _, row, cents in chosen]
        if not errors:
            try:
                if recommendation_set is None:
                    recommendation_set = services.recommendation_set_create(
                        organisation=request.organisation, actor=request.actor, name=values["name"],
                        description=values["description"], amount_mode=values["amount_mode"] or AmountMode.FIXED, allocations=allocations)
                else:
                    services.recommendation_set_update(
                        organisation=request.organisation, actor=request.actor, set_id=recommendation_set.id, name=values["name"],
                        description=values["description"], amount_mode=values["amount_mode"] or AmountMode.FIXED, allocations=allocations)
            except ApplicationError as exc:
                message = exc.message
                if exc.param and exc.param.startswith("allocations[") and "]" in exc.param:
                    index = int(exc.param[len("allocations["):exc.param.index("]")])
                    if index < len(chosen):
                        message = f"{chosen[index][1]['name']}: {exc.message}"
                errors.append(message)
            else:
                messages.success(request, "Recommendation set saved. Preview its giving form below.")
                return redirect("recommendation-set-edit", recommendation_set.id)
        return self.render_page(request, recommendation_set, rows, values, errors=errors, status=400)

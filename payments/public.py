"""The public payment pages of donation forms and checkout links.

- `/donate/<slug>`: the form's page. ACTIVE takes card gifts; PAUSED (or an
  organisation no longer connected to Stripe) shows a generic "not accepting
  gifts right now" page; DRAFT is a preview for signed-in staff of the
  organisation only (a banner, payment disabled), 404 for anyone else; ARCHIVED
  is 404. A form that allows recurring gifts lets the donor choose One-off or
  one of its frequencies (`frequency`): the first gift then saves the card and,
  once paid, starts the plan (payments.recurring.plan_create_from_payment).
- `/c/<code>`: a checkout link's page: its fixed amount and donor, the consent
  checkbox, the card. EXPIRED, CANCELED and COMPLETED links get a clear page
  saying so, never a payment.
- `/donate/<slug>/intent`, `/c/<code>/intent`: what static/js/pay.js POSTs
  (FormData, CSRF token, the attempt key made at render). They check the input,
  start the payment (`payments.services.payment_start`: connection, donor cap and
  link state, all before any PaymentIntent exists) and answer JSON:
  `{"client_secret", "return_url"}` (200), or `{"errors": {field: [messages]},
  "refusal": text}` (400, 429 with Retry-After).

Thin: every rule is in engage (forms, links) and payments (money). A refusal
that depends on the donor's records (a cap) is one fixed sentence whoever typed
the email (`compliance.services.public_refusal_message`).
"""
from __future__ import annotations

import logging
import secrets

from django import forms
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views import View

from compliance.models import Jurisdiction
from compliance.selectors import jurisdiction_preview
from compliance.services import public_refusal_message
from donations.countries import ISO_3166_ALPHA2
from engage.models import CheckoutLink, DonationForm, FormStatus, Frequency, LinkStatus, Visibility
from engage.selectors import amount_rows, dollars_label, form_address_rule, public_form_get, public_link_get
from organisations.session import memberships_of
from payments.models import PaymentKind
from payments.services import PartSpec, payment_start
from donations.crm import source_fields_from_query
from donations.custom_field_forms import add_custom_field_inputs, custom_field_values
from donations.custom_fields import custom_fields_clean
from together import stripe_gateway
from together.csp import stripe_js_url
from together.exceptions import ApplicationError
from together.money import MAX_TEXT_LENGTH, MoneyParseError, parse_amount_cents
from together.ratelimit import public_post_take

log = logging.getLogger("together.payments")

AU_STATES = ("ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA")
ADDRESS_FIELDS = ("address_line1", "address_line2", "suburb", "state", "postcode", "country")
REQUIRED_ADDRESS_FIELDS = ("address_line1", "suburb", "postcode", "country")
CLOSED_MESSAGE = "{organisation} is not accepting gifts through this page right now. Please check back later."
UNAVAILABLE_MESSAGE = "Card payments are unavailable right now. No payment was taken; please try again in a few minutes."


# --- input ------------------------------------------------------------------------------------

class DonorFieldsForm(forms.Form):
    """What a donor types: always name and email; phone and address as the page asks."""

    first_name = forms.CharField(max_length=100, label="First name",
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(max_length=100, label="Last name",
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    email = forms.EmailField(max_length=254, label="Email",
                             widget=forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false"}))
    phone = forms.CharField(max_length=40, label="Phone", required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "tel", "type": "tel"}))
    address_line1 = forms.CharField(max_length=200, label="Street address", required=False,
                                    widget=forms.TextInput(attrs={"autocomplete": "address-line1"}))
    address_line2 = forms.CharField(max_length=200, label="Unit, building (optional)", required=False,
                                    widget=forms.TextInput(attrs={"autocomplete": "address-line2"}))
    suburb = forms.CharField(max_length=100, label="Suburb or town", required=False,
                             widget=forms.TextInput(attrs={"autocomplete": "address-level2"}))
    state = forms.CharField(max_length=50, label="State", required=False,
                            widget=forms.TextInput(attrs={"autocomplete": "address-level1", "list": "au-states"}))
    postcode = forms.CharField(max_length=12, label="Postcode", required=False,
                               widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}))
    country = forms.CharField(max_length=2, label="Country code", required=False, initial="AU",
                              widget=forms.TextInput(attrs={"autocomplete": "country", "maxlength": "2", "class": "short"}),
                              help_text="Two letters: AU for Australia.")

    def __init__(self, *args, phone: str = Visibility.OPTIONAL, address: str = Visibility.REQUIRED,
                 identity: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.phone_rule, self.address_rule = phone, address
        if not identity:  # a checkout link: the donor is known
            for name in ("first_name", "last_name", "email"):
                del self.fields[name]
        if phone == Visibility.NONE:
            del self.fields["phone"]
        elif phone == Visibility.REQUIRED:
            self.fields["phone"].required = True
        else:
            self.fields["phone"].label = "Phone (optional)"
        if address == Visibility.NONE:
            for name in ADDRESS_FIELDS:
                del self.fields[name]
        elif address == Visibility.OPTIONAL:
            self.fields["address_line1"].label = "Street address (optional)"
        for name, field in self.fields.items():
            if field.required or (address == Visibility.REQUIRED and name in (*REQUIRED_ADDRESS_FIELDS, "state")):
                field.widget.attrs["aria-required"] = "true"
                field.widget.attrs["required"] = "required"

    @property
    def asks_address(self) -> bool:
        return "address_line1" in self.fields

    def clean_country(self):
        value = (self.cleaned_data.get("country") or "").strip().upper()
        if value and value not in ISO_3166_ALPHA2:
            raise forms.ValidationError("Enter a two-letter country code, like AU or NZ.")
        return value

    def clean(self):
        data = super().clean()
        if self.address_rule == Visibility.REQUIRED:
            for name in REQUIRED_ADDRESS_FIELDS:
                if not (data.get(name) or "").strip() and name not in self.errors:
                    self.add_error(name, "Required: electoral law needs your address.")
            if (data.get("country") or "AU") == "AU" and not (data.get("state") or "").strip() and "state" not in self.errors:
                self.add_error("state", "Required for an Australian address.")
        if data.get("state") and (data.get("country") or "AU") == "AU":
            state = data["state"].strip().upper()
            if state not in AU_STATES:
                self.add_error("state", f"Use one of {', '.join(AU_STATES)}.")
            else:
                data["state"] = state
        return data

    def donor_details(self, *, base: dict | None = None) -> dict:
        out = dict(base or {})
        for name in self.fields:
            value = (self.cleaned_data.get(name) or "").strip()
            if value:
                out[name] = value
        if any(out.get(k) for k in ("address_line1", "suburb", "postcode")):
            out.setdefault("country", "AU")
        elif not (base or {}).get("country"):
            out.pop("country", None)  # the "AU" pre-filled beside an address left blank says nothing
        return out


def _custom_form(form: DonationForm, data=None) -> forms.Form:
    """The gift custom fields the form's page asks (DonationForm.custom_field_keys), as `cf_<key>` inputs."""
    custom = forms.Form(data, prefix=None)
    if form.custom_field_keys:
        add_custom_field_inputs(custom, organisation=form.organisation, applies_to="DONATION", keys=form.custom_field_keys)
        for field in custom.fields.values():
            if field.required:
                field.widget.attrs.update({"aria-required": "true", "required": "required"})
    return custom


def _custom_values(custom: forms.Form, organisation, errors: dict) -> dict:
    """The answers, typed by the one rule (donations.custom_fields); refusals land beside their inputs."""
    if not custom.fields:
        return {}
    if not custom.is_valid():
        errors.update({k: list(v) for k, v in custom.errors.items()})
        return {}
    values = {k: v for k, v in custom_field_values(custom).items() if v is not None}
    try:
        return custom_fields_clean(organisation, "DONATION", values, enforce_required=False)
    except ApplicationError as exc:
        errors[(exc.param or "").replace("custom_fields.", "cf_")] = [exc.message]
        return {}


def _amount_cents(form: DonationForm, data) -> tuple[int | None, str | None, str]:
    """(cents, error, field) from the chosen button or the "Other" amount."""
    other = (data.get("other_amount") or "").strip()
    low, high = form.effective_minimum_cents, form.effective_maximum_cents
    if other and form.allow_custom:
        if len(other) > MAX_TEXT_LENGTH:
            return None, "Enter an amount in dollars, e.g. 40 or 40.50.", "other_amount"
        try:
            cents = parse_amount_cents(other)
        except MoneyParseError as exc:
            return None, exc.message, "other_amount"
        if cents < low:
            return None, f"The smallest gift here is {dollars_label(low)}.", "other_amount"
        if cents > high:
            return None, f"The largest gift here is {dollars_label(high)}.", "other_amount"
        return cents, None, "other_amount"
    choice = (data.get("amount") or "").strip()
    if not choice:
        return None, "Choose an amount" + (" or enter another." if form.allow_custom else "."), "amount"
    if not choice.isdigit() or int(choice) not in form.visible_amounts_cents():
        return None, "Choose one of the amounts shown.", "amount"
    return int(choice), None, "amount"


ONE_OFF_LABEL = "One-off"
# The gift button's words per frequency: "Give $50 monthly".
FREQUENCY_BUTTON_WORDS = {Frequency.WEEKLY: "weekly", Frequency.FORTNIGHTLY: "fortnightly", Frequency.MONTHLY: "monthly",
                          Frequency.QUARTERLY: "quarterly", Frequency.ANNUALLY: "yearly"}


def form_frequencies(form: DonationForm) -> list[str]:
    """The frequencies a recurring gift on this form may take (the form's choice, in
    the usual order); none when the form takes one-off gifts only."""
    if not form.allow_recurring:
        return []
    offered = set(form.recurring_frequencies or [])
    return [f for f in Frequency.values if f in offered]


def _frequency(form: DonationForm, data) -> tuple[str | None, str | None]:
    """(frequency or None for one-off, error)."""
    value = (data.get("frequency") or "").strip().upper()
    if not value:
        return None, None
    if value not in form_frequencies(form):
        return None, "Choose how often to give from the options shown."
    return value, None


def _attempt_key(prefix: str) -> str:
    return f"{prefix}:{secrets.token_urlsafe(24)}"


def _valid_attempt_key(value: str | None, prefix: str) -> bool:
    return bool(value) and value.startswith(prefix + ":") and 8 <= len(value) <= 150 and all(
        ch.isalnum() or ch in ":_-" for ch in value)


# --- responses ----------------------------------------------------------------------------------

def _page(request, template: str, context: dict, *, status: int = 200, secret_url: bool = False):
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"  # the page carries a fresh attempt key and a CSRF token
    if secret_url:
        response["Referrer-Policy"] = "no-referrer"  # the link's code never leaves in a Referer
    return response


def _json(body: dict, status: int = 200, **headers) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _errors_json(errors: dict, refusal: str = "", status: int = 400) -> JsonResponse:
    return _json({"errors": {k: [str(m) for m in v] for k, v in errors.items()}, "refusal": refusal}, status)


def _rate_limited(request, organisation) -> JsonResponse | None:
    result = public_post_take(request, scope=f"org:{organisation.id}")
    if result.allowed:
        return None
    minutes = max(1, -(-result.retry_after // 60))
    return _json({"errors": {}, "refusal": f"Too many payment attempts from your connection. Please try again in "
                                           f"{minutes} minute{'s' if minutes != 1 else ''}."},
                 429, Retry_After=str(result.retry_after))


def _service_refusal(exc: ApplicationError, organisation, field_names) -> JsonResponse:
    if exc.code == "service_unavailable":  # Stripe unreachable or keys missing: never the detail to the public
        log.error("public payment refused as unavailable: %s", exc.message, extra={"organisation_id": organisation.id})
        return _errors_json({}, UNAVAILABLE_MESSAGE, status=503)
    refusal = public_refusal_message(exc, organisation_name=organisation.live.name)
    if refusal:
        return _errors_json({}, refusal)
    param = exc.param if exc.param in field_names else None
    if param:
        return _errors_json({param: [exc.message]}, "Please check the highlighted details.")
    return _errors_json({}, exc.message)


def _staff_of(request, organisation) -> bool:
    if not request.user.is_authenticated:
        return False
    live = organisation.live
    return any(m.organisation_id == live.id for m in memberships_of(request.user))


def _stripe_page_context(request, organisation) -> dict:
    """A page that takes a card: its key and Stripe.js, whose origins join this response's policy (together.csp)."""
    stripe_key = stripe_gateway.publishable_key_for(organisation)
    return {"stripe_js_url": stripe_js_url(request), "stripe_key": stripe_key}


# --- /donate/<slug> -----------------------------------------------------------------------------

class DonateView(View):
    template = "payments/donate.html"

    def load(self, request, slug) -> tuple[DonationForm, bool]:
        form = public_form_get(slug=slug)
        if form is None:
            raise Http404("No such donation form.")
        preview = form.status == FormStatus.DRAFT
        if preview and not _staff_of(request, form.organisation):
            raise Http404("No such donation form.")
        return form, preview

    def get(self, request, slug):
        form, preview = self.load(request, slug)
        organisation = form.organisation
        if not preview and not form.open_to_donors:  # PAUSED, or ACTIVE before Stripe is connected: the generic page
            return closed_page(request, organisation, title=form.title,
                               message=CLOSED_MESSAGE.format(organisation=organisation.live.name))
        donor_form = DonorFieldsForm(phone=form.phone_visibility, address=form_address_rule(form=form))
        visible = form.visible_amounts_cents()
        default = form.default_amount_cents if form.default_amount_cents in visible else None
        frequencies = form_frequencies(form)
        frequency_options = [{"value": "", "label": ONE_OFF_LABEL, "words": ""}] + [
            {"value": f, "label": Frequency(f).label, "words": FREQUENCY_BUTTON_WORDS[f]} for f in frequencies]
        context = {
            "frequency_rows": amount_rows(frequency_options, per_row=3) if frequencies else [],
            "form": form, "organisation": organisation.live, "sandbox": organisation.is_sandbox, "preview": preview,
            "donor_form": donor_form, "custom_form": _custom_form(form), "amount_rows": amount_rows(visible), "default_amount": default,
            "minimum_cents": form.effective_minimum_cents, "maximum_cents": form.maximum_cents,
            "attempt_key": _attempt_key("form"), "intent_url": f"/donate/{form.slug}/intent", "au_states": AU_STATES,
            "tracking": source_fields_from_query(request.GET),
            "regulated": form_address_rule(form=form) == Visibility.REQUIRED,
            "page_title": form.title,
        }
        if not preview:
            try:
                context.update(_stripe_page_context(request, organisation))
            except ApplicationError as exc:
                return unavailable_page(request, organisation, exc)
        return _page(request, self.template, context)


class DonateIntentView(View):
    def post(self, request, slug):
        form = public_form_get(slug=slug)
        if form is None or form.status == FormStatus.DRAFT:
            raise Http404("No such donation form.")
        organisation = form.organisation
        if not form.takes_gifts or not organisation.stripe_connected:
            return _errors_json({}, CLOSED_MESSAGE.format(organisation=organisation.live.name), status=409)
        limited = _rate_limited(request, organisation)
        if limited:
            return limited
        donor_form = DonorFieldsForm(request.POST, phone=form.phone_visibility, address=form_address_rule(form=form))
        errors = {}
        amount, amount_error, amount_field = _amount_cents(form, request.POST)
        if amount_error:
            errors[amount_field] = [amount_error]
        frequency, frequency_error = _frequency(form, request.POST)
        if frequency_error:
            errors["frequency"] = [frequency_error]
        if not donor_form.is_valid():
            errors.update({k: list(v) for k, v in donor_form.errors.items()})
        custom_fields = _custom_values(_custom_form(form, request.POST), organisation, errors)
        attempt_key = request.POST.get("attempt_key", "")
        if not _valid_attempt_key(attempt_key, "form"):
            return _errors_json(errors, "This page is out of date: reload it and try again.")
        if errors:
            return _errors_json(errors, "Please check the highlighted details.")
        try:
            payment = payment_start(
                organisation=organisation, kind=PaymentKind.FORM, attempt_key=attempt_key,
                donor_details=donor_form.donor_details(), form=form,
                parts=[PartSpec(recipient_organisation=organisation, amount_cents=amount, revenue_code=form.revenue_code,
                                campaign_id=form.campaign_id)],
                frequency=frequency, request_id=getattr(request, "request_id", ""),
                tracking=source_fields_from_query(request.POST), custom_fields=custom_fields,
            )
        except ApplicationError as exc:
            return _service_refusal(exc, organisation, set(donor_form.fields) | {"amount", "other_amount", "frequency"})
        return _json({"client_secret": payment.client_secret, "return_url": f"/pay/{payment.id}"})


# --- /c/<code> ----------------------------------------------------------------------------------

LINK_REFUSALS = {
    LinkStatus.COMPLETED: ("This link has already been paid", "This payment has already been made. Thank you for your gift."),
    LinkStatus.EXPIRED: ("This link has expired", "This payment link has expired. Please contact {organisation} for a new one."),
    LinkStatus.CANCELED: ("This link was cancelled", "This payment link was cancelled. Please contact {organisation} if you "
                                                      "would still like to give."),
}


def _link_or_404(code: str) -> CheckoutLink:
    link = public_link_get(code=code)
    if link is None:
        raise Http404("No such checkout link.")
    return link


def _link_address_rule(link: CheckoutLink) -> str:
    """A regulated gift needs the donor's address on file; when the donor record has
    none, the page asks for it (kept on the donation as what the donor typed)."""
    donor = link.donor
    if donor.address_line1 and donor.postcode:
        return Visibility.NONE
    if jurisdiction_preview(organisation=link.organisation, code=link.revenue_code) == Jurisdiction.UNREGULATED:
        return Visibility.NONE
    return Visibility.REQUIRED


def _link_donor_details(link: CheckoutLink) -> dict:
    donor = link.donor
    fields = ("first_name", "last_name", "organisation_name", "email", "phone", *ADDRESS_FIELDS)
    return {k: getattr(donor, k) for k in fields if getattr(donor, k, None)}


def _masked_email(email: str) -> str:
    local, _, domain = (email or "").partition("@")
    if not domain:
        return email
    return (local[:2] if len(local) > 3 else local[:1]) + "•••@" + domain


class CheckoutView(View):
    template = "payments/checkout.html"

    def get(self, request, code):
        link = _link_or_404(code)
        organisation = link.organisation
        status = link.effective_status()
        if status in LINK_REFUSALS:
            title, message = LINK_REFUSALS[status]
            return closed_page(request, organisation, title=title, message=message.format(organisation=organisation.live.name),
                               status=200 if status == LinkStatus.COMPLETED else 410, secret_url=True,
                               paid=status == LinkStatus.COMPLETED)
        if not organisation.stripe_connected:
            return closed_page(request, organisation, title="Payments are unavailable",
                               message=CLOSED_MESSAGE.format(organisation=organisation.live.name), secret_url=True)
        try:
            stripe_context = _stripe_page_context(request, organisation)
        except ApplicationError as exc:
            return unavailable_page(request, organisation, exc, secret_url=True)
        donor_form = DonorFieldsForm(identity=False, phone=Visibility.NONE, address=_link_address_rule(link))
        context = {
            "link": link, "organisation": organisation.live, "sandbox": organisation.is_sandbox, "donor": link.donor,
            "donor_email": _masked_email(link.donor.email), "donor_form": donor_form, "au_states": AU_STATES,
            "intent_url": f"/c/{link.code}/intent", "attempt_key": f"link:{link.id}",
            "tracking": source_fields_from_query(request.GET),
            "heading": link.description or f"{dollars_label(link.amount_cents)} donation to {organisation.live.name}",
            "page_title": link.description or "Your donation", **stripe_context,
        }
        return _page(request, self.template, context, secret_url=True)


class CheckoutIntentView(View):
    def post(self, request, code):
        link = _link_or_404(code)
        organisation = link.organisation
        status = link.effective_status()
        if status in LINK_REFUSALS:
            return _errors_json({}, LINK_REFUSALS[status][1].format(organisation=organisation.live.name), status=409)
        limited = _rate_limited(request, organisation)
        if limited:
            return limited
        donor_form = DonorFieldsForm(request.POST, identity=False, phone=Visibility.NONE, address=_link_address_rule(link))
        if not donor_form.is_valid():
            return _errors_json({k: list(v) for k, v in donor_form.errors.items()}, "Please check the highlighted details.")
        consent_given = (request.POST.get("consent") == "yes") if link.consent_text else None
        try:
            payment = payment_start(
                organisation=organisation, kind=PaymentKind.CHECKOUT_LINK, attempt_key=f"link:{link.id}",
                donor_details=donor_form.donor_details(base=_link_donor_details(link)), checkout_link=link,
                parts=[PartSpec(recipient_organisation=organisation, amount_cents=link.amount_cents,
                                revenue_code=link.revenue_code, campaign_id=link.campaign_id)],
                consent_text=link.consent_text, consent_given=consent_given, request_id=getattr(request, "request_id", ""),
                tracking=source_fields_from_query(request.POST),
            )
        except ApplicationError as exc:
            if exc.param == "checkout_link":
                return _errors_json({}, exc.message, status=409)
            return _service_refusal(exc, organisation, set(donor_form.fields))
        return _json({"client_secret": payment.client_secret, "return_url": f"/pay/{payment.id}"})


# --- closed ---------------------------------------------------------------------------------------

def unavailable_page(request, organisation, exc: ApplicationError, *, secret_url: bool = False):
    log.error("payment page unavailable: %s", exc.message, extra={"organisation_id": organisation.id})
    return closed_page(request, organisation, title="Payments are unavailable", message=UNAVAILABLE_MESSAGE, status=503,
                       secret_url=secret_url)


def closed_page(request, organisation, *, title: str, message: str, status: int = 200, secret_url: bool = False,
                paid: bool = False):
    return _page(request, "payments/closed.html", {
        "organisation": organisation.live, "sandbox": organisation.is_sandbox, "title": title, "message": message,
        "page_title": title, "paid": paid,
    }, status=status, secret_url=secret_url)

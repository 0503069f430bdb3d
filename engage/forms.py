"""Dashboard forms: input only. Every rule is in engage/services.py."""
from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from donations.models import Campaign, CampaignStatus
from engage.models import (
    CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS, CHECKOUT_LINK_MAX_EXPIRY_DAYS, CONSENT_TEXT_MAX, DEFAULT_MINIMUM_CENTS, FormStatus,
    Frequency, Visibility,
)
from together.money import MAX_TEXT_LENGTH, MoneyField, MoneyParseError, format_cents, parse_amount_cents


def dollars_text(cents: int | None) -> str:
    """Cents → what a person types: 250, 1250.50 ("" for None)."""
    if cents is None:
        return ""
    text = format_cents(cents)
    return text[:-3] if text.endswith(".00") else text


def _campaign_choices(organisation) -> list[tuple[str, str]]:
    campaigns = Campaign.objects.for_organisation(organisation).filter(status=CampaignStatus.ACTIVE).order_by("name").values_list("id", "name")
    return [("", "— none —")] + list(campaigns)


class AmountListField(forms.CharField):
    """"10, 25, 50, 100" (whole dollars) → [1000, 2500, 5000, 10000]."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return []
        out = []
        for part in value.replace(";", ",").split(","):
            part = part.strip().lstrip("$").strip()
            if not part:
                continue
            if not part.isascii() or not part.isdigit() or len(part) > 9:
                raise forms.ValidationError("Whole dollars separated by commas, e.g. 25, 50, 100, 250.", code="invalid")
            out.append(int(part) * 100)
        return out


class DonationFormForm(forms.Form):
    param_fields = {"suggested_amounts_cents": "suggested_amounts", "default_amount_cents": "default_amount",
                    "minimum_cents": "minimum", "maximum_cents": "maximum", "campaign_id": "campaign",
                    "stripe_account": "status"}

    name = forms.CharField(max_length=200, help_text="Internal: only staff see it.")
    title = forms.CharField(max_length=200, help_text="The page's headline, e.g. “Help protect the riverbank”.")
    description = forms.CharField(required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}),
                                  help_text="Optional subhead under the title.")
    slug = forms.CharField(max_length=80, label="Address (slug)",
                           help_text="The page is /donate/<slug>: lower case, words joined by hyphens. Permanent once published.",
                           widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "pattern": "[a-z0-9]+(-[a-z0-9]+)*"}))
    status = forms.ChoiceField(choices=[c for c in FormStatus.choices if c[0] != FormStatus.ARCHIVED], initial=FormStatus.DRAFT,
                               help_text="Draft: a preview for signed-in staff. Active: takes gifts. Paused: a generic “not accepting gifts” page.")
    suggested_amounts = AmountListField(label="Suggested amounts (whole dollars)", max_length=200,
                                        help_text="Comma-separated, e.g. 25, 50, 100, 250. Shown as buttons; amounts under the minimum are hidden.")
    allow_custom = forms.BooleanField(required=False, initial=True, label="Allow another amount (“Other”)")
    default_amount = MoneyField(required=False, label="Pre-selected amount", help_text="One of the suggested amounts, or blank.")
    minimum = MoneyField(required=False, label="Minimum (AUD)",
                         help_text=f"Blank: the organisation minimum (${DEFAULT_MINIMUM_CENTS // 100}).")
    maximum = MoneyField(required=False, label="Maximum (AUD)", help_text="Blank: no maximum.")
    allow_recurring = forms.BooleanField(required=False, initial=True, label="Allow recurring gifts")
    recurring_frequencies = forms.MultipleChoiceField(choices=Frequency.choices, required=False, widget=forms.CheckboxSelectMultiple,
                                                      initial=[Frequency.MONTHLY], label="Recurring frequencies")
    phone_visibility = forms.ChoiceField(choices=Visibility.choices, initial=Visibility.OPTIONAL, label="Phone")
    address_visibility = forms.ChoiceField(
        choices=Visibility.choices, initial=Visibility.OPTIONAL, label="Address",
        help_text="Electoral law: when gifts count under a regulated jurisdiction the address is always required, whatever this says.",
    )
    revenue_code = forms.CharField(required=False, max_length=100, label="Revenue code",
                                   widget=forms.TextInput(attrs={"list": "revenue-codes", "autocomplete": "off"}))
    campaign = forms.ChoiceField(required=False, label="Campaign")
    custom_field_keys = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Also ask (custom fields)",
        help_text="Gift custom fields the page asks (Settings → Custom fields); a required one must be answered.")

    def __init__(self, *args, organisation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = _campaign_choices(organisation)
        from donations.custom_fields import custom_fields_active

        asked = custom_fields_active(organisation=organisation, applies_to="DONATION") if organisation is not None else []
        if asked:
            self.fields["custom_field_keys"].choices = [(d["key"], d["label"] + (" (required)" if d["required"] else ""))
                                                        for d in asked]
        else:
            del self.fields["custom_field_keys"]

    @classmethod
    def initial_for(cls, form) -> dict:
        return {
            "name": form.name, "title": form.title, "description": form.description or "", "slug": form.slug, "status": form.status,
            "suggested_amounts": ", ".join(dollars_text(a) for a in form.suggested_amounts_cents),
            "allow_custom": form.allow_custom, "default_amount": dollars_text(form.default_amount_cents),
            "minimum": dollars_text(form.minimum_cents), "maximum": dollars_text(form.maximum_cents),
            "allow_recurring": form.allow_recurring, "recurring_frequencies": form.recurring_frequencies,
            "phone_visibility": form.phone_visibility, "address_visibility": form.address_visibility,
            "revenue_code": form.revenue_code or "", "campaign": form.campaign_id or "",
            "custom_field_keys": list(form.custom_field_keys or []),
        }

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"], "title": d["title"], "description": d.get("description") or None, "slug": d["slug"].strip().lower(),
            "status": d["status"], "suggested_amounts_cents": d["suggested_amounts"], "allow_custom": bool(d.get("allow_custom")),
            "default_amount_cents": d.get("default_amount"), "minimum_cents": d.get("minimum"), "maximum_cents": d.get("maximum"),
            "allow_recurring": bool(d.get("allow_recurring")), "recurring_frequencies": list(d.get("recurring_frequencies") or []),
            "phone_visibility": d["phone_visibility"], "address_visibility": d["address_visibility"],
            "revenue_code": d.get("revenue_code") or None, "campaign_id": d.get("campaign") or None,
            **({"custom_field_keys": list(d.get("custom_field_keys") or [])} if "custom_field_keys" in self.fields else {}),
        }


class CheckoutLinkForm(forms.Form):
    param_fields = {"donor_id": "donor", "amount_cents": "amount", "campaign_id": "campaign", "expires_at": "expires_in_days"}

    donor = forms.CharField(required=False, widget=forms.HiddenInput)
    amount = MoneyField(label="Amount (AUD)", help_text="Exact: the donor cannot change it.")
    description = forms.CharField(required=False, max_length=200, label="Description (page heading)",
                                  help_text="Optional. Suggest fills e.g. “$250 donation from Jane Smith”.")
    consent_text = forms.CharField(required=False, max_length=CONSENT_TEXT_MAX, label="Consent checkbox (optional)",
                                   widget=forms.Textarea(attrs={"rows": 2, "maxlength": str(CONSENT_TEXT_MAX)}),
                                   help_text=f"Shown beside a checkbox above Pay, at most {CONSENT_TEXT_MAX} characters; "
                                             "the donor's answer is stored on the donation.")
    revenue_code = forms.CharField(required=False, max_length=100, label="Revenue code",
                                   widget=forms.TextInput(attrs={"list": "revenue-codes", "autocomplete": "off"}))
    campaign = forms.ChoiceField(required=False, label="Campaign")
    expires_in_days = forms.IntegerField(min_value=1, max_value=CHECKOUT_LINK_MAX_EXPIRY_DAYS, initial=CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS,
                                         label="Expires after (days)",
                                         widget=forms.NumberInput(attrs={"class": "w-9"}),
                                         help_text=f"Default {CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS} days; at most {CHECKOUT_LINK_MAX_EXPIRY_DAYS}.")

    def __init__(self, *args, organisation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = _campaign_choices(organisation)

    def clean(self):
        data = super().clean()
        if not data.get("donor"):
            self.add_error("donor", "Pick a donor (they need an email).")
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        days = d.get("expires_in_days") or CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS
        return {
            "donor_id": d["donor"], "amount_cents": d["amount"], "description": d.get("description") or None,
            "consent_text": d.get("consent_text") or None, "revenue_code": d.get("revenue_code") or None,
            "campaign_id": d.get("campaign") or None, "expires_at": timezone.now() + dt.timedelta(days=days),
        }


def parse_dollars_or_none(text: str | None) -> int | None:
    """For the Suggest button: the amount typed so far, if it reads as money."""
    if not text or len(text) > MAX_TEXT_LENGTH:
        return None
    try:
        return parse_amount_cents(text)
    except MoneyParseError:
        return None

"""Dashboard forms: input only. Every rule is in donations/services.py."""
from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from donations.models import Campaign, CampaignStatus, DonorType, InKindCategory, PaymentMethod
from donations.custom_field_forms import add_custom_field_inputs, custom_field_values
from donations.representations import DONOR_WRITABLE
from donations.services import MAX_BATCH_ROWS
from together.money import MoneyField, format_cents
from together.widgets import DateInput


def cents_to_dollars(cents: int | None) -> str:
    return format_cents(cents)


# The dashboard's donor form: what a person may set, less the integration fields.
DONOR_FORM_FIELDS = [f for f in DONOR_WRITABLE if f not in ("external_id", "metadata", "custom_fields")]


class DonorForm(forms.Form):
    donor_type = forms.ChoiceField(choices=DonorType.choices, initial=DonorType.INDIVIDUAL, label="Type")
    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    organisation_name = forms.CharField(required=False, max_length=200, label="Organisation name")
    email = forms.EmailField(required=False)
    phone = forms.CharField(required=False, max_length=40)
    address_line1 = forms.CharField(required=False, max_length=200, label="Address line 1")
    address_line2 = forms.CharField(required=False, max_length=200, label="Address line 2")
    suburb = forms.CharField(required=False, max_length=100)
    state = forms.CharField(required=False, max_length=50)
    postcode = forms.CharField(required=False, max_length=12)
    country = forms.CharField(required=False, max_length=2, initial="AU", help_text="Two letters, e.g. AU.")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    employer_id = forms.CharField(
        required=False, max_length=24, label="Employer or organisation",
        help_text="Individuals only: the organisation donor they work for or give through. Start typing its name and pick it.",
        widget=forms.TextInput(attrs={"list": "employer-options", "autocomplete": "off", "hx-get": "/donors/employer-options",
                                      "hx-trigger": "input changed delay:200ms", "hx-target": "#employer-options"}))

    def __init__(self, *args, organisation=None, custom_values=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organisation is not None:  # one input per custom field (donations.custom_field_forms)
            add_custom_field_inputs(self, organisation=organisation, applies_to="DONOR", values=custom_values)

    def service_kwargs(self) -> dict:
        return {k: (self.cleaned_data.get(k) or None) for k in DONOR_FORM_FIELDS} | {"country": self.cleaned_data.get("country") or "AU"} \
            | ({"custom_fields": custom_field_values(self)} if getattr(self, "custom_field_definitions", None) else {})


METHOD_CHOICES = [("CASH", "Cash"), ("CHEQUE", "Cheque"), ("BANK_TRANSFER", "Bank transfer"), ("IN_KIND", "In-kind")]


class GiftForm(forms.Form):
    """Record a gift: an existing donor (picked by type-ahead) or a new one inline."""

    param_fields = {"email": "new_email", "payment_method": "method"}  # the services' names for these fields

    donor = forms.CharField(required=False, widget=forms.HiddenInput)
    new_donor = forms.BooleanField(required=False, label="New donor")
    new_donor_type = forms.ChoiceField(choices=DonorType.choices, required=False, label="Type")
    new_first_name = forms.CharField(required=False, max_length=100, label="First name")
    new_last_name = forms.CharField(required=False, max_length=100, label="Last name")
    new_organisation_name = forms.CharField(required=False, max_length=200, label="Organisation name")
    new_email = forms.EmailField(required=False, label="Email")
    method = forms.ChoiceField(choices=METHOD_CHOICES, widget=forms.RadioSelect, initial="CHEQUE", label="Kind of gift")
    amount = MoneyField(label="Amount (AUD)", help_text="For in-kind gifts, the fair (open-market) value.")
    donation_date = forms.DateField(widget=DateInput, label="Date of the gift", help_text="For a cheque, the cheque's date.")
    reference = forms.CharField(required=False, max_length=100, label="Cheque number / bank reference")
    in_kind_category = forms.ChoiceField(choices=[("", "—")] + list(InKindCategory.choices), required=False, label="In-kind category")
    in_kind_description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Description")
    in_kind_valuation_method = forms.CharField(required=False, max_length=1000, label="How the value was set")
    revenue_code = forms.CharField(required=False, max_length=100, label="Revenue code",
                                   widget=forms.TextInput(attrs={"list": "revenue-codes", "autocomplete": "off"}))
    campaign = forms.ChoiceField(required=False, label="Campaign")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    # Source tracking (issue 19): checked by donations.crm.source_fields_clean.
    source_code = forms.CharField(required=False, max_length=100, label="Source code", help_text="Your code for the appeal, mailing or event.")
    referrer = forms.CharField(required=False, max_length=200, label="Referred by")
    utm_source = forms.CharField(required=False, max_length=100, label="UTM source")
    utm_medium = forms.CharField(required=False, max_length=100, label="UTM medium")
    utm_campaign = forms.CharField(required=False, max_length=100, label="UTM campaign")

    def __init__(self, *args, organisation=None, **kwargs):
        super().__init__(*args, **kwargs)
        campaigns = Campaign.objects.for_organisation(organisation).filter(status=CampaignStatus.ACTIVE).order_by("name").values_list("id", "name")
        self.fields["campaign"].choices = [("", "— none —")] + list(campaigns)
        if not self.is_bound:
            self.fields["donation_date"].initial = timezone.localdate()
        add_custom_field_inputs(self, organisation=organisation, applies_to="DONATION")
        # A new donor's own custom fields (its required ones are donor_create's to demand).
        add_custom_field_inputs(self, organisation=organisation, applies_to="DONOR", prefix="new_cf_", optional=True)

    def clean(self):
        data = super().clean()
        if not data.get("new_donor") and not data.get("donor"):
            self.add_error("donor", "Pick a donor, or tick New donor and fill in their details.")
        if data.get("new_donor") and not any(data.get(k) for k in ("new_first_name", "new_last_name", "new_organisation_name", "new_email")):
            self.add_error("new_email", "A new donor needs at least a name, an organisation or an email.")
        return data

    def donation_kwargs(self) -> dict:
        d = self.cleaned_data
        in_kind = d["method"] == "IN_KIND"
        return {
            "donation_type": "IN_KIND" if in_kind else "MONETARY",
            "payment_method": None if in_kind else d["method"],
            "amount_cents": d["amount"],
            "donation_date": d["donation_date"],
            "reference": d.get("reference") or None,
            "in_kind_category": (d.get("in_kind_category") or None) if in_kind else None,
            "in_kind_description": (d.get("in_kind_description") or None) if in_kind else None,
            "in_kind_valuation_method": (d.get("in_kind_valuation_method") or None) if in_kind else None,
            "revenue_code": d.get("revenue_code") or None,
            "campaign_id": d.get("campaign") or None,
            "notes": d.get("notes") or None,
            "custom_fields": custom_field_values(self),
            **{name: d.get(name) or None for name in ("source_code", "referrer", "utm_source", "utm_medium", "utm_campaign")},
        }

    def new_donor_kwargs(self) -> dict:
        d = self.cleaned_data
        return {"donor_type": d.get("new_donor_type") or DonorType.INDIVIDUAL, "first_name": d.get("new_first_name") or None,
                "last_name": d.get("new_last_name") or None, "organisation_name": d.get("new_organisation_name") or None,
                "email": d.get("new_email") or None,
                "custom_fields": {k: v for k, v in custom_field_values(self, "new_cf_").items() if v is not None}}


class DonationEditForm(forms.Form):
    amount = MoneyField(label="Amount (AUD)")
    donation_date = forms.DateField(widget=DateInput)
    reference = forms.CharField(required=False, max_length=100)
    revenue_code = forms.CharField(required=False, max_length=100, widget=forms.TextInput(attrs={"list": "revenue-codes"}))
    in_kind_description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, organisation=None, custom_values=None, **kwargs):
        super().__init__(*args, **kwargs)
        if organisation is not None:
            add_custom_field_inputs(self, organisation=organisation, applies_to="DONATION", values=custom_values)


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=1000, help_text="Why this record was entered in error.")


class RefundForm(forms.Form):
    refund_date = forms.DateField(widget=DateInput, initial=dt.date.today)
    reason = forms.CharField(max_length=1000)
    # Card gifts only (the page drops it for others): part of the gift, or empty for all that is left.
    amount = MoneyField(required=False, label="Amount to refund (AUD)",
                        help_text="Part or all of what is left; leave empty to refund all of it. Refunded through Stripe.")


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    goal = MoneyField(required=False, label="Goal (AUD)")
    starts_at = forms.DateField(required=False, widget=DateInput, label="Starts")
    ends_at = forms.DateField(required=False, widget=DateInput, label="Ends")

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {"name": d["name"], "description": d.get("description") or None, "goal_cents": d.get("goal"),
                "starts_at": d.get("starts_at"), "ends_at": d.get("ends_at")}


class BatchHeaderForm(forms.Form):
    reference = forms.CharField(max_length=100, label="Deposit reference", help_text="Deposit slip or bank reference.")
    deposit_date = forms.DateField(widget=DateInput, label="Deposit date")
    payment_method = forms.ChoiceField(choices=[("CHEQUE", "Cheques"), ("CASH", "Cash"), ("BANK_TRANSFER", "Bank transfers")], initial="CHEQUE")
    control_count = forms.IntegerField(min_value=1, max_value=MAX_BATCH_ROWS, label="Number of gifts (control)")
    control_total = MoneyField(label="Total amount (control, AUD)")


class BatchRowForm(forms.Form):
    donor = forms.CharField(required=False, max_length=254, label="Donor (email or id)")
    amount = MoneyField(required=False, label="Amount")
    reference = forms.CharField(required=False, max_length=100, label="Cheque no.")
    donation_date = forms.DateField(required=False, widget=DateInput, label="Cheque date")
    revenue_code = forms.CharField(required=False, max_length=100, label="Revenue code")


BatchRowFormSet = forms.formset_factory(BatchRowForm, extra=0)

"""Dashboard and public forms: input only. Every rule is in services.py."""
from __future__ import annotations

import re

from django import forms

from donations.models import PaymentMethod
from recommendations.models import Allocation, AmountMode
from together.money import MoneyParseError, parse_amount_cents
from together.widgets import DateInput


def dollars_to_cents(raw: str) -> int | None:
    """'25' → 2500, '25.5' → 2550, '' → 0; None when it is not an amount (together.money's grammar)."""
    raw = raw if isinstance(raw, str) else ""
    if not raw.strip():
        return 0
    try:
        return parse_amount_cents(raw)
    except MoneyParseError:
        return None


def cents_to_dollars(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class DonorDetailsForm(forms.Form):
    first_name = forms.CharField(max_length=100, label="First name", required=False)
    last_name = forms.CharField(max_length=100, label="Last name", required=False)
    email = forms.CharField(max_length=254, label="Email", required=False, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    address_line1 = forms.CharField(max_length=200, label="Address", required=False, widget=forms.TextInput(attrs={"autocomplete": "address-line1"}))
    address_line2 = forms.CharField(max_length=200, label="Address line 2 (optional)", required=False, widget=forms.TextInput(attrs={"autocomplete": "address-line2"}))
    suburb = forms.CharField(max_length=100, label="Suburb", required=False)
    state = forms.CharField(max_length=50, label="State", required=False)
    postcode = forms.CharField(max_length=12, label="Postcode", required=False, widget=forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}))
    country = forms.CharField(max_length=2, label="Country (2-letter code)", required=False, initial="AU")
    phone = forms.CharField(max_length=40, label="Phone (optional)", required=False, widget=forms.TextInput(attrs={"autocomplete": "tel"}))

    DONOR_FIELDS = ("first_name", "last_name", "email", "address_line1", "address_line2", "suburb", "state", "postcode", "country", "phone")

    def __init__(self, *args, allocations: list[Allocation], amount_mode: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.allocations = allocations
        self.amount_mode = amount_mode
        required = {"first_name", "last_name", "email", "address_line1", "suburb", "state", "postcode"}
        for name in required:
            self.fields[name].widget.attrs["aria-required"] = "true"
        autocomplete = {"first_name": "given-name", "last_name": "family-name", "suburb": "address-level2",
                        "state": "address-level1", "country": "country"}
        for name, value in autocomplete.items():
            self.fields[name].widget.attrs["autocomplete"] = value
        if amount_mode != AmountMode.FIXED:
            for allocation in allocations:
                initial = cents_to_dollars(allocation.amount_cents) if amount_mode == AmountMode.SUGGESTED else ""
                self.fields[self.amount_field(allocation)] = forms.CharField(
                    required=False, initial=initial, label=allocation.link.recipient_organisation.name,
                    widget=forms.TextInput(attrs={"inputmode": "decimal", "class": "amount", "data-amount": "1",
                                                  "placeholder": "0.00", "aria-describedby": "amount-help"}),
                )

    @staticmethod
    def amount_field(allocation: Allocation) -> str:
        return f"amount_{allocation.position}"

    def clean(self):
        cleaned = super().clean()
        if self.amount_mode != AmountMode.FIXED:
            amounts = []
            for allocation in self.allocations:
                name = self.amount_field(allocation)
                cents = dollars_to_cents(self.data.get(name, ""))
                if cents is None:
                    self.add_error(name, "Enter an amount in dollars, like 25 or 25.50.")
                    cents = 0
                amounts.append(cents)
            cleaned["amounts"] = amounts
        else:
            cleaned["amounts"] = None
        return cleaned

    def donor(self) -> dict:
        return {k: self.cleaned_data.get(k, "") for k in self.DONOR_FIELDS}

    def field_for_param(self, param: str | None) -> str | None:
        """Where a service's `param` lands: allocations[2].amount_cents → amount_2."""
        if not param:
            return None
        match = re.match(r"^allocations\[(\d+)\]", param)
        if match:
            name = f"amount_{match.group(1)}"
            return name if name in self.fields else None
        return param if param in self.fields else None


class OfflineGiftForm(DonorDetailsForm):
    donation_date = forms.DateField(label="Date received", widget=DateInput)
    payment_method = forms.ChoiceField(
        label="Payment method",
        choices=[(PaymentMethod.BANK_TRANSFER, "Bank transfer"), (PaymentMethod.CHEQUE, "Cheque"), (PaymentMethod.CASH, "Cash")],
    )
    payment_reference = forms.CharField(max_length=100, required=False, label="Payment reference (bank reference or cheque number)")
    pledge_id = forms.CharField(required=False, widget=forms.HiddenInput)


class IntroductionSignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Your full name")
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(label="Password (at least 8 characters)", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    organisation_name = forms.CharField(max_length=200, label="Your organisation's name")


class NewOrganisationForm(forms.Form):
    organisation_name = forms.CharField(max_length=200, label="Organisation name")

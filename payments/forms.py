"""Dashboard forms for recurring plans: input only. Every rule (minimums, dates,
lifecycle) is in payments/recurring.py; a refusal lands beside its field."""
from __future__ import annotations

from django import forms

from donations.models import Campaign, CampaignStatus
from engage.models import Frequency
from together.money import MoneyField


def _campaign_choices(organisation) -> list[tuple[str, str]]:
    campaigns = (Campaign.objects.for_organisation(organisation).filter(status=CampaignStatus.ACTIVE).order_by("name")
                 .values_list("id", "name"))
    return [("", "— none —")] + list(campaigns)


class DateInput(forms.DateInput):
    """<input type="date">: its value is always ISO (YYYY-MM-DD), whatever the locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")


class PlanAmountForm(forms.Form):
    """Change amount: from the next charge on."""

    amount = MoneyField(label="New amount (AUD)", help_text="Charged from the next bill date on.")

    def service_kwargs(self) -> dict:
        return {"amount_cents": self.cleaned_data["amount"]}


class PlanNextDateForm(forms.Form):
    """Change next date: the schedule re-anchors on it."""

    next_bill_date = forms.DateField(label="New next bill date", widget=DateInput(),
                                     help_text="Today or later; later periods follow on from this date.")

    def service_kwargs(self) -> dict:
        return {"next_bill_date": self.cleaned_data["next_bill_date"]}


class PlanPauseForm(forms.Form):
    detail = forms.CharField(required=False, max_length=2000, label="Note (optional)",
                             help_text="Why it is paused, for the team.")


class PlanCancelForm(forms.Form):
    reason = forms.CharField(required=False, max_length=200, label="Reason (optional)")


class ManualPlanForm(forms.Form):
    """A MANUAL plan (a bank standing order staff confirm each period) for a donor."""

    amount = MoneyField(label="Amount each period (AUD)")
    frequency = forms.ChoiceField(choices=Frequency.choices, initial=Frequency.MONTHLY)
    start_date = forms.DateField(label="First payment date", widget=DateInput(),
                                 help_text="A standing order already running may have started up to a year ago.")
    revenue_code = forms.CharField(required=False, max_length=100, label="Revenue code",
                                   widget=forms.TextInput(attrs={"list": "plan-revenue-codes", "autocomplete": "off"}))
    campaign = forms.ChoiceField(required=False, label="Campaign")

    def __init__(self, *args, organisation, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].choices = _campaign_choices(organisation)

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {"amount_cents": d["amount"], "frequency": d["frequency"], "payment_method": "MANUAL",
                "start_date": d["start_date"], "revenue_code": d.get("revenue_code") or None,
                "campaign_id": d.get("campaign") or None}

from __future__ import annotations

from django import forms
from django.utils import timezone

from compliance.models import Jurisdiction
from compliance.rules import financial_year_of
from reports.exporters import REGISTRY, REPORTABLE_JURISDICTIONS
from reports.models import ExportFormat
from together.widgets import DateInput


class ReportForm(forms.Form):
    """The period picker of the Reports pages (dashboard and admin)."""

    report = forms.ChoiceField(choices=[])
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.CSV)
    date_from = forms.DateField(label="From", required=False, widget=DateInput)
    date_to = forms.DateField(label="To", required=False, widget=DateInput)
    jurisdiction = forms.ChoiceField(
        required=False, help_text="Disclosure return only; blank: the organisation's default jurisdiction.",
        choices=[("", "—")] + [(j, Jurisdiction(j).label) for j in REPORTABLE_JURISDICTIONS],
    )
    period = forms.CharField(
        required=False, max_length=10,
        help_text="Disclosure return only: a financial year (2025-26), a calendar year (2027) or a date in the period.",
    )
    view = forms.ChoiceField(
        required=False, label="Reconciliation view", initial="summary",
        choices=[("summary", "Summary: per day and method, deposit batch and Stripe payout"),
                 ("payouts", "Per Stripe payout, with each payout's gifts (gross, fee, net)")],
        help_text="Reconciliation only.",
    )

    def __init__(self, *args, organisations=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["report"].choices = [(name, e.title) for name, e in REGISTRY.items()]
        start, end = financial_year_of(timezone.localdate())
        self.fields["date_from"].initial = start
        self.fields["date_to"].initial = end
        if organisations is not None:
            self.fields["organisation"] = forms.ModelChoiceField(queryset=organisations, empty_label=None)
            self.order_fields(["organisation"])

    def report_data(self) -> dict[str, str]:
        """The query parameters the exporter resolves (the same as the API's)."""
        data = self.cleaned_data
        out: dict[str, str] = {}
        if data.get("date_from"):
            out["from"] = data["date_from"].isoformat()
        if data.get("date_to"):
            out["to"] = data["date_to"].isoformat()
        if data["report"] == "reconciliation" and data.get("view") == "payouts":
            out["view"] = "payouts"
        if data["report"] == "disclosure-return":
            if data.get("jurisdiction"):
                out["jurisdiction"] = data["jurisdiction"]
            # The return covers the whole disclosure period containing `from` (or the one named).
            out.pop("to", None)
            if data.get("period"):
                out["period"] = data["period"]
                out.pop("from", None)
        return out

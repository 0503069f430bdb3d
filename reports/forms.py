from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from compliance.models import Jurisdiction
from compliance.rules import calendar_year_of, financial_year_of
from reports.exporters import REGISTRY, REPORTABLE_JURISDICTIONS
from reports.models import ExportFormat
from together.widgets import DateInput


def period_presets(today: dt.date) -> dict[str, tuple[str, dt.date, dt.date]]:
    """The period picker's presets on `today`: key -> (label, first day, last day)."""
    fy_start, fy_end = financial_year_of(today)
    last_start, last_end = financial_year_of(fy_start - dt.timedelta(days=1))
    cal_start, cal_end = calendar_year_of(today)
    return {
        "this_fy": (f"This financial year ({fy_start.year}-{str(fy_end.year)[2:]})", fy_start, fy_end),
        "last_fy": (f"Last financial year ({last_start.year}-{str(last_end.year)[2:]})", last_start, last_end),
        "this_year": (f"This calendar year ({cal_start.year})", cal_start, cal_end),
    }


CUSTOM = "custom"


class ReportForm(forms.Form):
    """The period picker of the Reports pages (dashboard and admin): a preset
    (this financial year by default, last financial year, this calendar year) or
    a custom range. A preset sets both dates; without one the dates are taken as
    sent (the form as the API and older callers send it)."""

    report = forms.ChoiceField(choices=[])
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.CSV)
    preset = forms.ChoiceField(label="Period", required=False, choices=[], widget=forms.RadioSelect)
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
        self.presets = period_presets(timezone.localdate())
        self.fields["preset"].choices = [(key, label) for key, (label, _, _) in self.presets.items()] + [(CUSTOM, "Custom range")]
        self.fields["preset"].initial = "this_fy"
        _, start, end = self.presets["this_fy"]
        self.fields["date_from"].initial = start
        self.fields["date_to"].initial = end
        for key in ("date_from", "date_to"):
            self.fields[key].widget.attrs["data-period-date"] = key
        if organisations is not None:
            self.fields["organisation"] = forms.ModelChoiceField(queryset=organisations, empty_label=None)
            self.order_fields(["organisation"])
            del self.fields["preset"]  # the admin's page has no picker script: its dates are taken as sent

    def clean(self):
        data = super().clean()
        preset = data.get("preset")
        if preset and preset != CUSTOM:
            _, data["date_from"], data["date_to"] = self.presets[preset]
        return data

    def preset_dates(self) -> dict[str, list[str]]:
        """Each preset's dates, for the picker's script to fill the date inputs."""
        return {key: [start.isoformat(), end.isoformat()] for key, (_, start, end) in self.presets.items()}

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

from django import forms

from compliance.models import ElectionType, EntityType, Jurisdiction
from together.widgets import DateInput


class RevenueCodeForm(forms.Form):
    code = forms.CharField(max_length=100)
    jurisdiction = forms.ChoiceField(choices=Jurisdiction.choices)
    description = forms.CharField(required=False, max_length=1000)


class SettingsForm(forms.Form):
    entity_type = forms.ChoiceField(choices=EntityType.choices, label="AEC entity type")
    default_jurisdiction = forms.ChoiceField(choices=Jurisdiction.choices, help_text="For gifts without a revenue code.")
    alert_amber_percent = forms.IntegerField(min_value=1, max_value=100, label="Amber at (% of cap)")
    alert_red_percent = forms.IntegerField(min_value=1, max_value=100, label="Red at (% of cap)")
    alert_critical_percent = forms.IntegerField(min_value=1, max_value=100, label="Critical at (% of cap)")


class LodgeForm(forms.Form):
    reference = forms.CharField(max_length=200, label="Lodgement reference")
    lodged_date = forms.DateField(widget=DateInput, label="Lodged on")


class ElectionForm(forms.Form):
    election_type = forms.ChoiceField(choices=ElectionType.choices)
    jurisdiction = forms.ChoiceField(choices=[c for c in Jurisdiction.choices if c[0] != "UNREGULATED"])
    name = forms.CharField(max_length=200)
    writ_date = forms.DateField(widget=DateInput)
    polling_date = forms.DateField(widget=DateInput)

"""Settings → Custom fields (issue 19): ADMINs define, edit and archive the
organisation's fields on donors and gifts; EDITORs see them. Every change goes
through donations.custom_fields' services."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views import View

from donations import custom_fields as services
from donations.models import CustomField, CustomFieldAppliesTo, CustomFieldType
from organisations.models import Role
from organisations.session import DashboardMixin
from together.dashboard import call_service


class CustomFieldForm(forms.Form):
    applies_to = forms.ChoiceField(choices=[("DONOR", "Donors"), ("DONATION", "Gifts")], label="Field on")
    label = forms.CharField(max_length=100)
    key = forms.CharField(max_length=40, help_text="Lower-case letters, digits and _ (e.g. member_since). "
                                                   "The name in the API, imports (custom:key) and filters (cf_key).")
    field_type = forms.ChoiceField(choices=CustomFieldType.choices, label="Type")
    choices = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="Choice fields: one choice per line.")
    required = forms.BooleanField(required=False, label="Required on new records")
    help_text = forms.CharField(required=False, max_length=300, label="Help text")

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        choices = [line.strip() for line in (d.get("choices") or "").splitlines() if line.strip()]
        out = {"label": d["label"], "key": d["key"].strip(), "field_type": d["field_type"], "choices": choices,
               "required": d["required"], "help_text": d.get("help_text") or ""}
        if "applies_to" in self.fields:
            out["applies_to"] = d["applies_to"]
        return out


class CustomFieldEditForm(CustomFieldForm):
    position = forms.IntegerField(min_value=0, max_value=10_000, label="Position", help_text="Display order (ascending).")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields.pop("applies_to")


def _initial(field: CustomField) -> dict:
    return {"label": field.label, "key": field.key, "field_type": field.field_type, "choices": "\n".join(field.choices),
            "required": field.required, "help_text": field.help_text, "position": field.position}


class CustomFieldListView(DashboardMixin, View):
    required_role = Role.EDITOR
    write_role = Role.ADMIN

    def page(self, request, form, status=200):
        fields = list(services.custom_field_list(organisation=request.organisation))
        groups = [(label, [f for f in fields if f.applies_to == kind])
                  for kind, label in ((CustomFieldAppliesTo.DONOR, "Donors"), (CustomFieldAppliesTo.DONATION, "Gifts"))]
        return render(request, "donations/custom_fields.html", {
            "nav": "settings", "page_title": "Custom fields", "groups": groups, "form": form,
        }, status=status)

    def get(self, request):
        return self.page(request, CustomFieldForm(initial={"applies_to": request.GET.get("applies_to", "DONOR")}))

    def post(self, request):
        form = CustomFieldForm(request.POST)
        if form.is_valid():
            field = call_service(form, services.custom_field_create, organisation=request.organisation,
                                 actor=request.actor, **form.service_kwargs())
            if field:
                messages.success(request, f"Custom field {field.label} added.")
                return redirect("custom-fields")
        return self.page(request, form, status=400)


class CustomFieldEditView(DashboardMixin, View):
    required_role = Role.EDITOR
    write_role = Role.ADMIN

    def page(self, request, field, form, status=200):
        return render(request, "donations/custom_field_form.html", {
            "nav": "settings", "page_title": f"Custom field {field.label}", "field": field, "form": form,
        }, status=status)

    def get(self, request, pk):
        field = self.get_scoped_or_404(CustomField, pk)
        return self.page(request, field, CustomFieldEditForm(initial=_initial(field)))

    def post(self, request, pk):
        field = self.get_scoped_or_404(CustomField, pk)
        org, actor = request.organisation, request.actor
        action = request.POST.get("action")
        if action in ("archive", "restore"):
            service = services.custom_field_archive if action == "archive" else services.custom_field_restore
            service(organisation=org, actor=actor, custom_field_id=field.id)
            messages.success(request, f"{field.label} {'archived' if action == 'archive' else 'restored'}.")
            return redirect("custom-field-edit", field.id)
        form = CustomFieldEditForm(request.POST)
        if form.is_valid():
            changes = form.service_kwargs() | {"position": form.cleaned_data["position"]}
            if call_service(form, services.custom_field_update, organisation=org, actor=actor, custom_field_id=field.id,
                            **changes):
                messages.success(request, "Custom field saved.")
                return redirect("custom-fields")
        return self.page(request, field, form, status=400)

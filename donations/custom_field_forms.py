"""Dashboard inputs for custom fields (issue 19): one input per active field on
the donor, gift and gift-edit forms. Input only: the values go to the services,
whose custom_fields_clean types and checks them (its errors land beside the
input through the form's param_fields)."""
from __future__ import annotations

from django import forms

from donations.custom_fields import custom_field_display, custom_field_definitions, custom_fields_active
from donations.models import CustomFieldType
from together.widgets import DateInput

PREFIX = "cf_"


def _input(definition: dict) -> forms.Field:
    common = {"label": definition["label"], "required": definition["required"],
              "help_text": definition["help_text"] or None}
    kind = definition["field_type"]
    if kind == CustomFieldType.DATE:
        return forms.CharField(widget=DateInput, **common)
    if kind == CustomFieldType.NUMBER:
        return forms.CharField(max_length=40, widget=forms.TextInput(attrs={"inputmode": "decimal"}), **common)
    if kind == CustomFieldType.BOOLEAN:
        return forms.ChoiceField(choices=[("", "—"), ("true", "Yes"), ("false", "No")], **common)
    if kind == CustomFieldType.CHOICE:
        return forms.ChoiceField(choices=[("", "—")] + [(c, c) for c in definition["choices"]], **common)
    return forms.CharField(max_length=1000, **common)


def _initial(definition: dict, value):
    if value is None:
        return None
    if definition["field_type"] == CustomFieldType.BOOLEAN:
        return "true" if value else "false"
    return str(value)


def add_custom_field_inputs(form: forms.Form, *, organisation, applies_to: str, values: dict | None = None,
                            keys: list[str] | None = None, prefix: str = PREFIX, optional: bool = False) -> None:
    """Add `<prefix><key>` inputs (`cf_<key>`) for the organisation's active fields (only
    `keys`, in their order, when given), filled from `values` (the record's custom_fields)
    when the form is unbound. `optional`: never required by the form itself (a block the
    person may leave unused, such as the gift form's new donor: the service decides)."""
    definitions = custom_fields_active(organisation=organisation, applies_to=applies_to)
    if keys is not None:
        by_key = {d["key"]: d for d in definitions}
        definitions = [by_key[k] for k in keys if k in by_key]
    sets = dict(getattr(form, "custom_field_sets", {}))
    sets[prefix] = definitions
    form.custom_field_sets = sets
    if prefix == PREFIX:
        form.custom_field_definitions = definitions
    mapped = dict(getattr(form, "param_fields", {}))
    for d in definitions:
        mapped.setdefault(f"custom_fields.{d['key']}", prefix + d["key"])
    form.param_fields = mapped
    for definition in definitions:
        name = prefix + definition["key"]
        form.fields[name] = _input(definition)
        if optional:
            form.fields[name].required = False
            if definition["required"]:
                form.fields[name].label = f"{definition['label']} (required)"
        if values and not form.is_bound:
            form.initial[name] = _initial(definition, values.get(definition["key"]))


def custom_field_inputs(form: forms.Form, prefix: str = PREFIX) -> list:
    """The bound inputs, for templates that lay fields out by hand."""
    return [form[prefix + d["key"]] for d in getattr(form, "custom_field_sets", {}).get(prefix, [])]


def custom_field_values(form: forms.Form, prefix: str = PREFIX) -> dict:
    """What the person typed, by key: blank is None (no value)."""
    return {d["key"]: (form.cleaned_data.get(prefix + d["key"]) or None)
            for d in getattr(form, "custom_field_sets", {}).get(prefix, [])}


def custom_field_rows(*, organisation, applies_to: str, values: dict | None) -> list[tuple[str, str]]:
    """(label, value as read) for each field the record has a value for, archived
    fields included, in display order; then any stored key no longer defined."""
    values = values or {}
    definitions = custom_field_definitions(organisation=organisation, applies_to=applies_to)
    rows = [(d["label"] + (" (archived)" if d["archived"] else ""), custom_field_display(d, values[d["key"]]))
            for d in definitions if d["key"] in values]
    known = {d["key"] for d in definitions}
    rows += [(key, str(value)) for key, value in values.items() if key not in known]
    return rows

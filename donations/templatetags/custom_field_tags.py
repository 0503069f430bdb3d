from django import template

from donations.custom_field_forms import custom_field_inputs, custom_field_rows

register = template.Library()


@register.simple_tag(takes_context=True)
def custom_field_values(context, record, applies_to: str):
    """(label, value) rows of a donor's or gift's custom fields, for its page."""
    return custom_field_rows(organisation=context["request"].organisation, applies_to=applies_to,
                             values=getattr(record, "custom_fields", None))


@register.simple_tag
def custom_inputs(form, prefix: str = "cf_"):
    return custom_field_inputs(form, prefix)


@register.inclusion_tag("donations/_custom_field_filters.html", takes_context=True)
def custom_field_filters(context, applies_to: str):
    """One filter input per active custom field (`cf_<key>`), kept from the URL."""
    from donations.custom_fields import custom_fields_active

    request = context["request"]
    definitions = custom_fields_active(organisation=request.organisation, applies_to=applies_to)
    return {"filters": [{"name": f"cf_{d['key']}", "definition": d, "value": request.GET.get(f"cf_{d['key']}", "")}
                        for d in definitions]}

"""Template helpers for tags, sources and employers (issue 19)."""
from __future__ import annotations

from django import template

from donations.crm import employer_options

register = template.Library()


@register.inclusion_tag("donations/_employer_options.html", takes_context=True)
def employer_datalist(context):
    """The <datalist> behind a donor form's employer field: the organisation's ORGANISATION donors."""
    request = context["request"]
    return {"options": employer_options(organisation=request.organisation)}

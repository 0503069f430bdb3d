"""Template helpers for tags, sources and employers (issue 19)."""
from __future__ import annotations

from django import template

from donations.crm import employer_options

register = template.Library()


@register.inclusion_tag("donations/_employer_options.html", takes_context=True)
def employer_datalist(context, current_id=None):
    """The <datalist> behind a donor form's employer field: the current employer; typing
    fills it with matching ORGANISATION donors (htmx, donations.crm_views.EmployerOptionsView)."""
    request = context["request"]
    return {"options": employer_options(organisation=request.organisation, current_id=current_id or None), "wrap": True}


@register.inclusion_tag("donations/_donor_crm.html", takes_context=True)
def donor_crm(context, donor, next_page="detail"):
    """The donor page's block: employer, the donors naming this one as employer, and tags (with the forms to change them)."""
    from donations.crm import donor_links

    request = context["request"]
    return {"donor": donor, "dash": context.get("dash"), "csrf_token": context.get("csrf_token"), "next_page": next_page,
            "request": request,
            **donor_links(organisation=request.organisation, donor=donor)}


@register.inclusion_tag("donations/_tag_options.html", takes_context=True)
def tag_datalist(context):
    """A <datalist id="tag-options"> of the organisation's tag names."""
    from donations.models import Tag

    request = context["request"]
    return {"names": list(Tag.objects.for_organisation(request.organisation).order_by("name").values_list("name", flat=True)[:500])}

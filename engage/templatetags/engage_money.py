from django import template

from engage.selectors import dollars_label

register = template.Library()


@register.filter
def whole_dollars(cents) -> str:
    """Integer cents → "$250" or "$1,250.50": the way a donation page shows an amount."""
    if cents is None or cents == "":
        return "—"
    return dollars_label(int(cents))


@register.filter
def get_count(mapping, key):
    return mapping.get(key, 0) if hasattr(mapping, "get") else 0

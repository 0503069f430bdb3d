from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def dollars(cents) -> str:
    """Integer cents → "$1,234.56" (formatting only; money stays in cents)."""
    if cents is None or cents == "":
        return "—"
    value = Decimal(int(cents)) / 100
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


@register.filter
def get_item(mapping, key):
    """`{{ request.GET|get_item:'donation_date[gte]' }}` for keys with brackets."""
    try:
        return mapping.get(key, "") or ""
    except AttributeError:
        return ""

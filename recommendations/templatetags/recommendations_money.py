from django import template

register = template.Library()


@register.filter
def dollars(cents) -> str:
    """12345 → '$123.45' (integer cents in, formatted only here)."""
    try:
        cents = int(cents)
    except (TypeError, ValueError):
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"

"""Money typed by a person, parsed in one strict place.

Every dashboard form (and the public giving form) turns dollars typed as text
into integer cents here, never with ``Decimal(text) * 100``: that accepted
exponents (``1e5`` became $100,000, ``1e999997`` held a worker for half a
minute), ``NaN``, ``Infinity`` and non-ASCII digits. The grammar is small and
checked on bounded input before any arithmetic:

    [$] digits [. one or two digits]

where the digits are ASCII, either plain (``1250``) or grouped in thousands
with commas (``1,250``). Spaces around the text and after the ``$`` are
ignored. Nothing else: no sign, no exponent, no other separators.

The API takes integer cents (JSON numbers) and never goes through here.
"""
from __future__ import annotations

import re

from django import forms

# The largest amount any service accepts (donations.services.MAX_AMOUNT_CENTS): $100 billion.
MAX_CENTS = 10**13
# Longest text worth looking at: "$ 99,999,999,999.99" plus some slack for spaces.
MAX_TEXT_LENGTH = 40

_AMOUNT_RE = re.compile(
    r"""
    \$?[ ]*                                   # an optional dollar sign
    (?P<dollars>[0-9]{1,3}(?:,[0-9]{3})+      # 1,250 (commas between groups of three)
              |[0-9]+)                        # or 1250
    (?:\.(?P<cents>[0-9]{1,2}))?              # .5 or .50
    """,
    re.VERBOSE | re.ASCII,
)


class MoneyParseError(ValueError):
    """The text is not an amount of money; ``message`` says why, for a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


INVALID_MESSAGE = "Enter an amount in dollars, e.g. 250 or 1,250.50."


def parse_amount_cents(text: str, *, max_cents: int = MAX_CENTS) -> int:
    """Dollars as typed ("1,250.50", "$90", "0.5") → integer cents (125050, 9000, 50).

    Returns 0 or more; callers that need a positive amount check that
    themselves. Raises MoneyParseError for anything outside the grammar or
    above ``max_cents``. Runs in time bounded by MAX_TEXT_LENGTH whatever the input."""
    if not isinstance(text, str):
        raise MoneyParseError(INVALID_MESSAGE)
    if len(text) > MAX_TEXT_LENGTH:
        raise MoneyParseError(f"That is too long for an amount: at most {MAX_TEXT_LENGTH} characters.")
    stripped = text.strip(" \t\r\n")
    match = _AMOUNT_RE.fullmatch(stripped)
    if match is None:
        if re.fullmatch(r"\$?[ ]*[0-9,]*\.[0-9]{3,}", stripped, re.ASCII):
            raise MoneyParseError("At most two decimal places (cents).")
        if stripped.startswith("-"):
            raise MoneyParseError("The amount must be more than $0.")
        raise MoneyParseError(INVALID_MESSAGE)
    dollars = match.group("dollars").replace(",", "")
    if len(dollars.lstrip("0")) > len(str(max_cents // 100)):
        raise MoneyParseError(too_large_message(max_cents))
    cents_text = (match.group("cents") or "").ljust(2, "0")
    cents = int(dollars) * 100 + int(cents_text)
    if cents > max_cents:
        raise MoneyParseError(too_large_message(max_cents))
    return cents


def too_large_message(max_cents: int = MAX_CENTS) -> str:
    return f"The amount is too large (at most ${max_cents // 100:,})."


def format_cents(cents: int | None) -> str:
    """Integer cents → the text parse_amount_cents reads back ("1250.50"); "" for None."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class MoneyField(forms.CharField):
    """A dashboard form's amount: dollars typed by a person → integer cents, through
    parse_amount_cents. Positive unless ``allow_zero``; empty is None (``required=False``)."""

    def __init__(self, *, allow_zero: bool = False, max_cents: int = MAX_CENTS, **kwargs):
        self.allow_zero, self.max_cents = allow_zero, max_cents
        kwargs.setdefault("widget", forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off",
                                                           "maxlength": str(MAX_TEXT_LENGTH)}))
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        if value in (None, ""):
            return None
        try:
            cents = parse_amount_cents(value, max_cents=self.max_cents)
        except MoneyParseError as exc:
            raise forms.ValidationError(exc.message, code="invalid") from None
        if cents == 0 and not self.allow_zero:
            raise forms.ValidationError("The amount must be more than $0.", code="min_value")
        return cents


__all__ = ["MoneyField", "MAX_CENTS", "MAX_TEXT_LENGTH", "MoneyParseError", "parse_amount_cents", "format_cents", "too_large_message"]

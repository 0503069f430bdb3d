"""Form widgets shared by every dashboard form."""
from __future__ import annotations

from django import forms


class DateInput(forms.DateInput):
    """<input type=date> takes and gives ISO dates whatever the locale (en-AU would
    render 23/11/2026, which a date input drops, so an initial date vanished)."""

    input_type = "date"

    def __init__(self, attrs=None, format="%Y-%m-%d"):
        super().__init__(attrs=attrs, format=format)

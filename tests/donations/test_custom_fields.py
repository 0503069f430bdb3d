"""The one value rule of custom fields (donations.custom_fields), by property:
whatever arrives, a value is refused naming `custom_fields.<key>` or stored typed,
and cleaning what was stored gives it back unchanged (so a record read, edited and
written again never drifts)."""
from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from donations.custom_fields import custom_field_create, custom_field_value_clean, custom_fields_clean
from donations.models import CustomFieldType
from together.actors import Actor
from together.exceptions import ValidationFailed

CHOICES = ["North", "South", "Über-East"]
DEFINITIONS = {
    kind: {"key": f"f_{kind.lower()}", "label": kind.title(), "field_type": kind, "choices": CHOICES if kind == "CHOICE" else [],
           "required": False, "archived": False, "help_text": ""}
    for kind in CustomFieldType.values
}
STORED_TYPES = {"TEXT": str, "NUMBER": (int, float), "DATE": str, "BOOLEAN": bool, "CHOICE": str}

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=1200),
    st.decimals(allow_nan=False, allow_infinity=False), st.dates(), st.lists(st.integers(), max_size=2),
    st.sampled_from(["yes", "No", "TRUE", "0", "2026-02-30", "2026-02-28", "1,250.50", "-0", "1e3", "north", " South "]),
)


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(CustomFieldType.values), value=anything)
def test_refused_naming_the_field_or_stored_typed_and_stable(kind, value):
    definition = DEFINITIONS[kind]
    try:
        stored = custom_field_value_clean(definition, value)
    except ValidationFailed as exc:
        assert exc.param == f"custom_fields.{definition['key']}"
        return
    if stored is None:
        return
    assert isinstance(stored, STORED_TYPES[kind]) and not (kind == "NUMBER" and isinstance(stored, bool))
    assert custom_field_value_clean(definition, stored) == stored  # cleaning is idempotent
    if kind == "NUMBER":
        assert math.isfinite(stored)
    if kind == "DATE":
        assert dt.date(1900, 1, 1) <= dt.date.fromisoformat(stored) <= dt.date(2999, 12, 31)
    if kind == "CHOICE":
        assert stored in CHOICES
    if kind == "TEXT":
        assert stored == stored.strip() and 0 < len(stored) <= 1000


@settings(max_examples=300, deadline=None)
@given(number=st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: len(d.normalize().as_tuple().digits) <= 15 and abs(d.adjusted()) <= 15))
def test_numbers_keep_their_value_exactly(number):
    stored = custom_field_value_clean(DEFINITIONS["NUMBER"], str(number))
    assert Decimal(repr(stored)) == number
    assert custom_field_value_clean(DEFINITIONS["NUMBER"], number) == stored


@settings(max_examples=200, deadline=None)
@given(day=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2999, 12, 31)))
def test_dates_round_trip(day):
    assert custom_field_value_clean(DEFINITIONS["DATE"], day.isoformat()) == day.isoformat()
    assert custom_field_value_clean(DEFINITIONS["DATE"], day) == day.isoformat()


@settings(max_examples=200, deadline=None)
@given(choice=st.sampled_from(CHOICES), flips=st.lists(st.booleans(), min_size=12, max_size=12))
def test_a_choice_in_any_case_is_stored_as_defined(choice, flips):
    typed = "".join(c.upper() if f else c.lower() for c, f in zip(choice, flips + [False] * len(choice)))
    assert custom_field_value_clean(DEFINITIONS["CHOICE"], f"  {typed} ") == choice


@pytest.mark.django_db
def test_clean_merges_refuses_unknown_and_enforces_required(org):
    actor = Actor.system("tests")
    custom_field_create(organisation=org, actor=actor, applies_to="DONOR", key="tier", label="Tier", field_type="CHOICE",
                        choices=["Gold", "Silver"], required=True)
    custom_field_create(organisation=org, actor=actor, applies_to="DONOR", key="since", label="Since", field_type="DATE")
    with pytest.raises(ValidationFailed) as exc:
        custom_fields_clean(org, "DONOR", {"since": "2020-01-01"})
    assert exc.value.param == "custom_fields.tier"
    stored = custom_fields_clean(org, "DONOR", {"tier": "gold", "since": "2020-01-01"})
    assert stored == {"tier": "Gold", "since": "2020-01-01"}
    assert custom_fields_clean(org, "DONOR", {"since": None}, current=stored) == {"tier": "Gold"}
    assert custom_fields_clean(org, "DONOR", None, current=stored) == stored
    for values, param in (({"nope": 1}, "custom_fields.nope"), ({"tier": None}, "custom_fields.tier"), ("x", "custom_fields")):
        with pytest.raises(ValidationFailed) as exc:
            custom_fields_clean(org, "DONOR", values, current=stored)
        assert exc.value.param == param
    # Not binding required fields (a card gift's recording): only types are checked.
    assert custom_fields_clean(org, "DONOR", {}, enforce_required=False) == {}

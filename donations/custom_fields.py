"""Custom fields (issue 19): an organisation's own fields on donors and gifts.

Definitions are `donations.models.CustomField` rows; values live in the record's
`custom_fields` JSONB object under the field's key. Every value reaches a record
through `custom_fields_clean`, called by donor_create/donor_update and
donation_record/donation_update, so the API, the dashboard, the admin, imports
and the public pages obey one rule.

Stored JSON types (the API renders them as stored):
- TEXT: a string of 1 to 1,000 characters (trimmed).
- NUMBER: a JSON number of at most 15 significant digits (an integer when it is
  whole). Input may be a number or a numeric string ("12.50").
- DATE: an ISO 8601 date string, YYYY-MM-DD, 1900-01-01 to 2999-12-31.
- BOOLEAN: true or false. Input may also be "true"/"false", "yes"/"no", "1"/"0".
- CHOICE: one of the field's choices, exactly as defined (input matches any case).
A null or blank value removes the key; a required field cannot be removed.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from donations.models import CustomField, CustomFieldAppliesTo, CustomFieldType, Donation, Donor
from organisations.models import Organisation
from organisations.services import audit_record
from together.actors import Actor
from together.exceptions import NotFound, ValidationFailed

# A key: the API documents KEY_PATTERN (donations/api, engage/api), the service checks KEY_RE.
KEY_PATTERN = r"[a-z][a-z0-9_]{0,39}"
KEY_RE = re.compile(KEY_PATTERN)
MAX_FIELDS_PER_KIND = 50
MAX_CHOICES, MAX_CHOICE_LENGTH = 100, 100
MAX_TEXT = 1000
MAX_NUMBER_DIGITS = 15
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}
CACHE_TTL = 300
# What a definition is rendered with (API, audit).
CUSTOM_FIELD_FIELDS = ("id", "applies_to", "key", "label", "field_type", "choices", "required", "help_text", "position",
                       "archived_at", "created_at", "updated_at")


# --- definitions: reads ----------------------------------------------------------------

def _cache_key(organisation_id: str, applies_to: str) -> str:
    return f"customfields:v1:{organisation_id}:{applies_to}"


def _definitions_forget(organisation_id: str) -> None:
    keys = [_cache_key(organisation_id, kind) for kind in CustomFieldAppliesTo.values]
    try:
        cache.delete_many(keys)
    except Exception:  # Redis down: the TTL bounds staleness
        pass


def custom_field_definitions(*, organisation: Organisation, applies_to: str) -> list[dict]:
    """The organisation's fields for donors or gifts (archived ones too, flagged),
    in display order. Cached in Redis; every change of a definition forgets it
    (at once and again after its commit), and the entry lives at most 5 minutes."""
    key = _cache_key(organisation.id, applies_to)
    try:
        found = cache.get(key)
    except Exception:
        found = None
    if found is not None:
        return found
    rows = list(
        CustomField.objects.for_organisation(organisation).filter(applies_to=applies_to)
        .order_by("position", "created_at", "id")
        .values("id", "key", "label", "field_type", "choices", "required", "help_text", "position", "archived_at")
    )
    for row in rows:
        row["archived"] = row.pop("archived_at") is not None
    try:
        cache.set(key, rows, CACHE_TTL)
    except Exception:
        pass
    return rows


def custom_fields_active(*, organisation: Organisation, applies_to: str) -> list[dict]:
    """The fields a form shows: not archived, in display order."""
    return [d for d in custom_field_definitions(organisation=organisation, applies_to=applies_to) if not d["archived"]]


def custom_field_list(*, organisation: Organisation):
    return CustomField.objects.for_organisation(organisation).order_by("applies_to", "position", "created_at", "id")


def render_custom_field(obj: CustomField | dict) -> dict:
    row = obj if isinstance(obj, dict) else {k: getattr(obj, k) for k in CUSTOM_FIELD_FIELDS}
    out = {k: row[k] for k in CUSTOM_FIELD_FIELDS}
    out["object"] = "custom_field"
    out["archived"] = row["archived_at"] is not None
    for stamp in ("archived_at", "created_at", "updated_at"):
        out[stamp] = out[stamp].isoformat().replace("+00:00", "Z") if out[stamp] else None
    return out


# --- values ------------------------------------------------------------------------------

def _param(key: str) -> str:
    return f"custom_fields.{key}"


def custom_field_value_clean(definition: dict, value: Any) -> Any:
    """One value, typed as stored; None means no value. Raises ValidationFailed
    with param custom_fields.<key>."""
    key, kind, label = definition["key"], definition["field_type"], definition["label"]
    param = _param(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if kind == CustomFieldType.TEXT:
        if not isinstance(value, str):
            raise ValidationFailed(f"{label} must be text.", param=param)
        if len(value) > MAX_TEXT or "\x00" in value:
            raise ValidationFailed(f"{label} is text of at most {MAX_TEXT} characters.", param=param)
        return value
    if kind == CustomFieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
            raise ValidationFailed(f"{label} must be a number.", param=param)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationFailed(f"{label} must be a finite number.", param=param)
        try:
            number = Decimal(str(value).replace(",", "")) if isinstance(value, str) else Decimal(repr(value) if isinstance(value, float) else value)
        except (InvalidOperation, ValueError):
            raise ValidationFailed(f"{label} must be a number.", param=param) from None
        if not number.is_finite():
            raise ValidationFailed(f"{label} must be a finite number.", param=param)
        number = number.normalize() if number != 0 else Decimal(0)
        digits = len(number.as_tuple().digits)
        if digits > MAX_NUMBER_DIGITS or abs(number.adjusted()) > 20:
            raise ValidationFailed(f"{label} must be a number of at most {MAX_NUMBER_DIGITS} significant digits.", param=param)
        if number == number.to_integral_value():
            return int(number)
        return float(number)
    if kind == CustomFieldType.DATE:
        if isinstance(value, dt.datetime):
            raise ValidationFailed(f"{label} must be a date (YYYY-MM-DD).", param=param)
        if isinstance(value, str):
            try:
                if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    raise ValueError
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise ValidationFailed(f"{label} must be a date (YYYY-MM-DD).", param=param) from None
        if not isinstance(value, dt.date):
            raise ValidationFailed(f"{label} must be a date (YYYY-MM-DD).", param=param)
        if not DATE_MIN <= value <= DATE_MAX:
            raise ValidationFailed(f"{label} must be between {DATE_MIN.isoformat()} and {DATE_MAX.isoformat()}.", param=param)
        return value.isoformat()
    if kind == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in TRUE_WORDS | FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        raise ValidationFailed(f"{label} must be true or false.", param=param)
    if kind == CustomFieldType.CHOICE:
        if not isinstance(value, str):
            raise ValidationFailed(f"{label} must be one of: {', '.join(definition['choices'])}.", param=param)
        for choice in definition["choices"]:
            if choice.casefold() == value.casefold():
                return choice
        raise ValidationFailed(f"{label} must be one of: {', '.join(definition['choices'])}.", param=param)
    raise ValidationFailed(f"{label} has an unknown type.", param=param)  # pragma: no cover


def custom_fields_clean(organisation: Organisation, applies_to: str, values: Any, current: dict | None = None, *,
                        enforce_required: bool = True, definitions: list[dict] | None = None) -> dict:
    """The record's custom_fields after applying `values` (an object of key → value;
    null or blank removes a key) to `current` (None when the record is new).

    Unknown keys and archived fields are refused; each value is typed as stored
    (see the module's docstring). With `enforce_required`, a new record must carry
    every active required field, and no record may drop one. Errors are
    ValidationFailed with param `custom_fields.<key>` (or `custom_fields` when
    `values` is not an object)."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValidationFailed("custom_fields must be an object of field keys to values.", param="custom_fields")
    if definitions is None:
        if not values and (current is not None or not enforce_required):
            return dict(current or {})
        definitions = custom_field_definitions(organisation=organisation, applies_to=applies_to)
    by_key = {d["key"]: d for d in definitions}
    out = dict(current or {})
    for key in sorted(values, key=str):
        if not isinstance(key, str) or key not in by_key:
            raise ValidationFailed(f"Unknown custom field '{key}'.", param=_param(str(key)),
                                   reason="unknown_custom_field")
        definition = by_key[key]
        cleaned = custom_field_value_clean(definition, values[key])
        if definition["archived"] and cleaned is not None and cleaned != out.get(key):
            raise ValidationFailed(f"{definition['label']} is archived and takes no new values.", param=_param(key))
        if cleaned is None:
            if enforce_required and definition["required"] and not definition["archived"] and current is not None and key in out:
                raise ValidationFailed(f"{definition['label']} is required.", param=_param(key))
            out.pop(key, None)
        else:
            out[key] = cleaned
    if enforce_required and current is None:
        for definition in definitions:
            if definition["required"] and not definition["archived"] and definition["key"] not in out:
                raise ValidationFailed(f"{definition['label']} is required.", param=_param(definition["key"]))
    return out


def custom_fields_filter(*, organisation: Organisation, applies_to: str, key: str, raw: str, prefix: str = "") -> Q:
    """A filter on one field (`?cf_<key>=value`): the value is typed as stored and
    matched exactly through the GIN index (jsonb @>). An empty value matches
    records with no value for the field."""
    by_key = {d["key"]: d for d in custom_field_definitions(organisation=organisation, applies_to=applies_to)}
    if key not in by_key:
        raise ValidationFailed(f"Unknown custom field '{key}'.", param=f"cf_{key}")
    try:
        value = custom_field_value_clean(by_key[key], raw)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, param=f"cf_{key}") from None
    if value is None:
        return ~Q(**{f"{prefix}custom_fields__has_key": key})
    return Q(**{f"{prefix}custom_fields__contains": {key: value}})


def custom_field_display(definition: dict, value: Any) -> str:
    """A stored value as a person reads it (pages, exports)."""
    if value is None:
        return ""
    if definition["field_type"] == CustomFieldType.BOOLEAN:
        return "Yes" if value else "No"
    return str(value)


# --- definitions: writes --------------------------------------------------------------

def _in_use(organisation: Organisation, field: CustomField) -> bool:
    model = Donor if field.applies_to == CustomFieldAppliesTo.DONOR else Donation
    return model.objects.for_organisation(organisation).filter(custom_fields__has_key=field.key).exists()


def _clean_choices(field_type: str, choices: Any) -> list[str]:
    if field_type != CustomFieldType.CHOICE:
        if choices:
            raise ValidationFailed("choices are only for CHOICE fields.", param="choices")
        return []
    if not isinstance(choices, list) or not choices:
        raise ValidationFailed("A CHOICE field needs a list of choices.", param="choices")
    if len(choices) > MAX_CHOICES:
        raise ValidationFailed(f"A CHOICE field has at most {MAX_CHOICES} choices.", param="choices")
    out: list[str] = []
    for choice in choices:
        if not isinstance(choice, str) or not choice.strip() or len(choice.strip()) > MAX_CHOICE_LENGTH or "\x00" in choice:
            raise ValidationFailed(f"Each choice is text of 1 to {MAX_CHOICE_LENGTH} characters.", param="choices")
        if choice.strip().casefold() in {c.casefold() for c in out}:
            raise ValidationFailed(f"The choice '{choice.strip()}' is listed twice.", param="choices",
                                   reason="duplicate_choice")
        out.append(choice.strip())
    return out


def _clean_text(value: Any, param: str, max_length: int, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value:
        raise ValidationFailed(f"{param} must be text.", param=param)
    value = value.strip()
    if required and not value:
        raise ValidationFailed(f"{param} is required.", param=param)
    if len(value) > max_length:
        raise ValidationFailed(f"{param} is at most {max_length} characters.", param=param)
    return value


def _clean_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise ValidationFailed("key is 1 to 40 lower-case letters, digits and underscores, starting with a letter.",
                               param="key")
    return key


def _changed(organisation: Organisation, actor: Actor, action: str, field: CustomField, before: dict | None) -> None:
    audit_record(organisation=organisation, actor=actor, action=action, object_type="custom_field", object_id=field.id,
                 before=before, after=render_custom_field(field))
    _definitions_forget(organisation.id)
    org_id = organisation.id
    transaction.on_commit(lambda: _definitions_forget(org_id))


@transaction.atomic
def custom_field_create(*, organisation: Organisation, actor: Actor, applies_to: str, key: str, label: str,
                        field_type: str, choices: list | None = None, required: bool = False, help_text: str = "",
                        position: int | None = None) -> CustomField:
    if applies_to not in CustomFieldAppliesTo.values:
        raise ValidationFailed("applies_to must be DONOR or DONATION.", param="applies_to")
    if field_type not in CustomFieldType.values:
        raise ValidationFailed("field_type must be one of " + ", ".join(CustomFieldType.values) + ".", param="field_type")
    key = _clean_key(key)
    label = _clean_text(label, "label", 100, required=True)
    help_text = _clean_text(help_text, "help_text", 300, required=False)
    choices = _clean_choices(field_type, choices)
    if not isinstance(required, bool):
        raise ValidationFailed("required must be true or false.", param="required")
    existing = CustomField.objects.for_organisation(organisation).filter(applies_to=applies_to)
    if existing.filter(key=key).exists():
        raise ValidationFailed(f"A {applies_to.lower()} field with the key '{key}' exists already.", param="key",
                               reason="duplicate_key")
    if existing.count() >= MAX_FIELDS_PER_KIND:
        raise ValidationFailed(f"At most {MAX_FIELDS_PER_KIND} custom fields per kind of record.", param="applies_to",
                               reason="too_many_fields")
    if position is None:
        position = max(existing.values_list("position", flat=True), default=-1) + 1
    elif isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 10_000:
        raise ValidationFailed("position is a whole number from 0 to 10000.", param="position")
    try:
        with transaction.atomic():
            field = CustomField.objects.create(
                organisation=organisation, applies_to=applies_to, key=key, label=label, field_type=field_type,
                choices=choices, required=required, help_text=help_text, position=position,
            )
    except IntegrityError:
        raise ValidationFailed(f"A {applies_to.lower()} field with the key '{key}' exists already.", param="key",
                               reason="duplicate_key") from None
    _changed(organisation, actor, "custom_field.created", field, None)
    return field


def _for_update(organisation: Organisation, custom_field_id: str) -> CustomField:
    field = CustomField.objects.for_organisation(organisation).select_for_update().filter(pk=custom_field_id).first()
    if field is None:
        raise NotFound("Custom field not found.")
    return field


CUSTOM_FIELD_EDITABLE = frozenset({"key", "label", "field_type", "choices", "required", "help_text", "position"})


@transaction.atomic
def custom_field_update(*, organisation: Organisation, actor: Actor, custom_field_id: str, **changes) -> CustomField:
    """Change a definition. The key and the type are fixed once any record holds a
    value for the field (stored values keep their meaning); applies_to never changes.
    Making a field required binds new records and edits that would remove the value."""
    unknown = set(changes) - CUSTOM_FIELD_EDITABLE
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name} cannot be changed.", param=name)
    field = _for_update(organisation, custom_field_id)
    before = render_custom_field(field)
    if "key" in changes and changes["key"] != field.key:
        new_key = _clean_key(changes["key"])
        if _in_use(organisation, field):
            raise ValidationFailed("The key cannot change: records hold values for this field.", param="key")
        if CustomField.objects.for_organisation(organisation).filter(applies_to=field.applies_to, key=new_key).exists():
            raise ValidationFailed(f"A field with the key '{new_key}' exists already.", param="key",
                                   reason="duplicate_key")
        field.key = new_key
    if "field_type" in changes and changes["field_type"] != field.field_type:
        if changes["field_type"] not in CustomFieldType.values:
            raise ValidationFailed("field_type must be one of " + ", ".join(CustomFieldType.values) + ".", param="field_type")
        if _in_use(organisation, field):
            raise ValidationFailed("The type cannot change: records hold values for this field.", param="field_type")
        field.field_type = changes["field_type"]
        if field.field_type != CustomFieldType.CHOICE and "choices" not in changes:
            field.choices = []
    if "choices" in changes or field.field_type == CustomFieldType.CHOICE and not field.choices:
        field.choices = _clean_choices(field.field_type, changes.get("choices"))
    if "label" in changes:
        field.label = _clean_text(changes["label"], "label", 100, required=True)
    if "help_text" in changes:
        field.help_text = _clean_text(changes["help_text"], "help_text", 300, required=False)
    if "required" in changes:
        if not isinstance(changes["required"], bool):
            raise ValidationFailed("required must be true or false.", param="required")
        field.required = changes["required"]
    if "position" in changes:
        position = changes["position"]
        if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 10_000:
            raise ValidationFailed("position is a whole number from 0 to 10000.", param="position")
        field.position = position
    try:
        with transaction.atomic():
            field.save()
    except IntegrityError:
        raise ValidationFailed(f"A field with the key '{field.key}' exists already.", param="key",
                               reason="duplicate_key") from None
    _changed(organisation, actor, "custom_field.updated", field, before)
    return field


@transaction.atomic
def custom_field_archive(*, organisation: Organisation, actor: Actor, custom_field_id: str) -> CustomField:
    """Hide a field from forms and stop new values; stored values stay and are still
    rendered, filtered and exported. Archiving twice changes nothing."""
    field = _for_update(organisation, custom_field_id)
    if field.archived_at is not None:
        return field
    before = render_custom_field(field)
    field.archived_at = timezone.now()
    field.save(update_fields=["archived_at", "updated_at"])
    _changed(organisation, actor, "custom_field.archived", field, before)
    return field


@transaction.atomic
def custom_field_restore(*, organisation: Organisation, actor: Actor, custom_field_id: str) -> CustomField:
    field = _for_update(organisation, custom_field_id)
    if field.archived_at is None:
        return field
    before = render_custom_field(field)
    field.archived_at = None
    field.save(update_fields=["archived_at", "updated_at"])
    _changed(organisation, actor, "custom_field.restored", field, before)
    return field

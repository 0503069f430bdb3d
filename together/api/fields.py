"""Strict input fields: a value of the wrong JSON type is `invalid_request`
(code `invalid_type`), a value of the right type that is not allowed is
`validation_failed`. DRF's own fields coerce ("12" → 12); ours do not."""
from __future__ import annotations

import datetime as dt
import re

from rest_framework import serializers

from together.ids import looks_like_id


class StrictCharField(serializers.CharField):
    """A string, never coerced. `max_length` counts the characters as sent, before any
    trimming, as the OpenAPI document's `maxLength` does (DRF's own check counts them
    after: a padded string over the limit was accepted)."""

    default_error_messages = {"invalid_type": "Must be a string."}

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class PatternCharField(StrictCharField):
    def __init__(self, *, pattern: str, pattern_message: str, **kwargs):
        self.pattern = re.compile(pattern)
        self.pattern_message = pattern_message
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value and not self.pattern.fullmatch(value):
            raise serializers.ValidationError(self.pattern_message, code="invalid")
        return value


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid_type": "Must be an integer (JSON number without a fraction)."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid_type": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid_type")
        return data


class StrictDateField(serializers.DateField):
    default_error_messages = {"invalid_type": "Must be a date string, YYYY-MM-DD."}

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_type")
        value = super().to_internal_value(data)
        if not dt.date(1900, 1, 1) <= value <= dt.date(2999, 12, 31):
            raise serializers.ValidationError("Date out of range.", code="invalid")
        return value


class StrictChoiceField(serializers.ChoiceField):
    default_error_messages = {"invalid_type": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


class IdField(StrictCharField):
    """An object id. A malformed id is reported like an unknown one, by the service."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)


class MetadataField(serializers.Field):
    """String keys to string values: at most 50 keys of ≤ 40 characters, values ≤ 500."""

    MAX_KEYS, MAX_KEY, MAX_VALUE = 50, 40, 500
    default_error_messages = {"invalid_type": "Must be an object of string keys to string values."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid_type")
        if len(data) > self.MAX_KEYS:
            raise serializers.ValidationError(f"At most {self.MAX_KEYS} keys.", code="invalid")
        for key, value in data.items():
            if not isinstance(value, str):
                self.fail("invalid_type")
            if not key or len(key) > self.MAX_KEY:
                raise serializers.ValidationError(f"Keys are 1 to {self.MAX_KEY} characters.", code="invalid")
            if len(value) > self.MAX_VALUE:
                raise serializers.ValidationError(f"Values are at most {self.MAX_VALUE} characters.", code="invalid")
        return data

    def to_representation(self, value):
        return value


__all__ = [
    "StrictCharField", "PatternCharField", "StrictIntegerField", "StrictBooleanField", "StrictDateField",
    "StrictChoiceField", "IdField", "MetadataField", "looks_like_id",
]


# (serializer, the names its renderer or service uses): an output serializer
# documents exactly the keys its `render_*` function writes, an input serializer
# exactly the fields its service accepts. Registered with `@shape(...)`, next to
# the tuple the code itself uses; tests/api/test_shapes.py holds every pair equal.
SHAPES: list[tuple[type, tuple[str, ...]]] = []


def shape(*names: str):
    """Link a serializer to the list of names it documents (see SHAPES)."""

    def register(cls):
        SHAPES.append((cls, names))
        return cls

    return register

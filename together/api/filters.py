"""Filters with bracket operators, shared by the API, the dashboard and exports.

`BaseFilterSet.range_filters` names fields that get `name[gte]`, `name[gt]`,
`name[lte]`, `name[lt]`. Datetime fields accept a date (`2026-01-01`, taken as
that day in UTC: `[gte]`/`[lt]` from its first instant, `[gt]`/`[lte]` through
its last) or a full ISO 8601 datetime.
"""
from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from django.utils.dateparse import parse_date, parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from together.exceptions import InvalidRequest, ValidationFailed

OPERATORS = ("gte", "gt", "lte", "lt")
INTEGER_RE = re.compile(r"-?[0-9]+", re.ASCII)


class DateOrDateTimeField(forms.Field):
    def to_python(self, value):
        if value in (None, ""):
            return None
        value = value.strip()
        try:
            parsed = parse_datetime(value.replace(" ", "+")) if "T" in value else None
        except ValueError:  # well formed but impossible, e.g. hour 25
            raise forms.ValidationError("Enter a date (YYYY-MM-DD) or an ISO 8601 datetime.") from None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            # To UTC here: PostgreSQL refuses offsets beyond ±15:59 (a 500 otherwise).
            try:
                parsed = parsed.astimezone(dt.timezone.utc)
            except OverflowError:
                raise forms.ValidationError("The datetime is out of range.") from None
            if not 1 < parsed.year < 9999:
                raise forms.ValidationError("The datetime is out of range (years 2 to 9998).")
            return parsed
        try:
            day = parse_date(value)
        except ValueError:
            day = None
        if day is None:
            raise forms.ValidationError("Enter a date (YYYY-MM-DD) or an ISO 8601 datetime.")
        if not 1 < day.year < 9999:
            raise forms.ValidationError("The date is out of range (years 2 to 9998).")
        return day


class StrictBooleanFormField(forms.Field):
    """`true` or `false`, nothing else (django-filter's own also takes null, 1, yes...)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in ("true", "false"):
            return value == "true"
        raise forms.ValidationError("Must be true or false.")


@extend_schema_field({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]})
class DateTimeBoundFilter(django_filters.Filter):
    field_class = DateOrDateTimeField

    def filter(self, qs, value):
        if value is None:
            return qs
        lookup = self.lookup_expr
        if isinstance(value, dt.datetime):
            return qs.filter(**{f"{self.field_name}__{lookup}": value})
        start = dt.datetime.combine(value, dt.time.min, tzinfo=dt.timezone.utc)
        end = start + dt.timedelta(days=1)
        if lookup in ("gte", "lt"):
            return qs.filter(**{f"{self.field_name}__{lookup}": start})
        # gt a date: after that whole day; lte a date: through that whole day
        return qs.filter(**{f"{self.field_name}__{'gte' if lookup == 'gt' else 'lt'}": end})


BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint, the widest integer column we filter on


class StrictIntegerFormField(forms.Field):
    """ASCII digits with an optional minus sign, within a bigint; nothing else
    (Django's IntegerField also takes "１００" and "5.0"). A value beyond the column's
    range is refused here, so the list endpoint and the reports that share its
    FilterSet answer the same 400 (a report's SQL would otherwise fail to compile)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        value = str(value).strip()
        if not INTEGER_RE.fullmatch(value):
            raise forms.ValidationError("Enter a whole number.")
        if len(value.lstrip("-")) > 19 or not -BIGINT_MAX <= int(value) <= BIGINT_MAX:
            raise forms.ValidationError(f"Out of range: a whole number from {-BIGINT_MAX} to {BIGINT_MAX}.")
        return int(value)


class StrictIntegerFilter(django_filters.NumberFilter):
    field_class = StrictIntegerFormField


CHAR_FILTER_MAX_LENGTH = 1000


class BaseFilterSet(django_filters.FilterSet):
    datetime_range_filters: tuple[str, ...] = ("created_at", "updated_at")
    date_range_filters: tuple[str, ...] = ()
    integer_range_filters: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)

    @classmethod
    def get_filters(cls):
        filters = super().get_filters()
        for declared in filters.values():
            if isinstance(declared, django_filters.BooleanFilter):
                declared.field_class = StrictBooleanFormField
            elif isinstance(declared, django_filters.CharFilter):
                # The document gives text filters maxLength 1000 (together/api/schema.py): longer is 400 validation_failed.
                declared.extra.setdefault("max_length", CHAR_FILTER_MAX_LENGTH)
        for name in cls.datetime_range_filters:
            for op in OPERATORS:
                filters[f"{name}[{op}]"] = DateTimeBoundFilter(field_name=name, lookup_expr=op)
        for name in cls.date_range_filters:
            for op in OPERATORS:
                filters[f"{name}[{op}]"] = django_filters.DateFilter(field_name=name, lookup_expr=op)
        for name in cls.integer_range_filters:
            filters[name] = StrictIntegerFilter(field_name=name)
            for op in OPERATORS:
                filters[f"{name}[{op}]"] = StrictIntegerFilter(field_name=name, lookup_expr=op)
        return filters


# Filters a FilterSet adds per request (donations' custom fields: `cf_<key>`); a
# FilterSet that has them names the prefix in `dynamic_filter_prefix`.
def accepts_dynamic(filterset_class, name: str) -> bool:
    prefix = getattr(filterset_class, "dynamic_filter_prefix", None)
    return bool(prefix) and name.startswith(prefix)


class FilterBackend(DjangoFilterBackend):
    """django-filter, strict: an invalid value is 400 validation_failed naming it."""

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(name in filterset_class.base_filters or accepts_dynamic(filterset_class, name)
                                                   for name in request.query_params):
            return queryset  # nothing to filter: skip building the filterset (it deep-copies every filter)
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            name, errors = next(iter(filterset.errors.items()))
            raise ValidationFailed(f"{name}: {' '.join(errors)}", param=name)
        return filterset.qs


def check_query_params(query_params, allowed: set[str]) -> None:
    """Unknown parameters are errors, never ignored; so are empty values
    (`?created_at[gte]=` is no date: leave the parameter out instead) and
    repeated ones, except list parameters named `...[]`."""
    for name in query_params.keys():
        if name not in allowed:
            raise InvalidRequest(f"Unknown query parameter '{name}'.", param=name)
        values = query_params.getlist(name)
        if any(value == "" for value in values):
            raise InvalidRequest(f"Query parameter '{name}' is empty: give it a value or leave it out.", param=name)
        # Only list parameters (`expand[]`) repeat; a second `limit` would silently lose one value.
        if len(values) > 1 and not name.endswith("[]"):
            raise InvalidRequest(f"Query parameter '{name}' is given {len(values)} times; send it once.", param=name)

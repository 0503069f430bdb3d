"""Keyset pagination, newest first by (created_at, id). No OFFSET, no count."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from together.exceptions import ValidationFailed

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
PARAMS = ("limit", "starting_after", "ending_before")


@dataclass
class Page:
    rows: list
    has_more: bool


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_LIMIT}.", param="limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be from 1 to {MAX_LIMIT}; got {value}.", param="limit")
    return value


class KeysetPagination:
    """`queryset` must already be scoped to the organisation: a cursor id is looked
    up in it, so another organisation's id is simply unknown (400, param named)."""

    def paginate(self, queryset: QuerySet, query_params, *, values: tuple[str, ...] | None = None) -> Page:
        if queryset.ordered and queryset.query.order_by:
            raise ValueError("KeysetPagination orders the queryset itself; do not order it beforehand.")
        limit = parse_limit(query_params.get("limit"))
        starting_after = query_params.get("starting_after")
        ending_before = query_params.get("ending_before")
        if starting_after and ending_before:
            raise ValidationFailed("Send starting_after or ending_before, not both.", param="ending_before")
        table = queryset.model._meta.db_table
        backwards = False
        if starting_after or ending_before:
            param = "starting_after" if starting_after else "ending_before"
            cursor_id = starting_after or ending_before
            cursor = queryset.filter(pk=cursor_id).values_list("created_at", "pk").first()
            if cursor is None:
                raise ValidationFailed(f"{param} '{cursor_id}' is not an object in this list.", param=param)
            op = "<" if starting_after else ">"
            backwards = bool(ending_before)
            queryset = queryset.extra(
                where=[f'("{table}"."created_at", "{table}"."id") {op} (%s, %s)'], params=list(cursor)
            )
        order = ("created_at", "id") if backwards else ("-created_at", "-id")
        queryset = queryset.order_by(*order)
        if values is not None:
            queryset = queryset.values(*values)
        rows = list(queryset[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        return Page(rows=rows, has_more=has_more)

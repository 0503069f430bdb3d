"""Keyset pagination, newest first by (created_at, id) unless a KeysetOrdering
says otherwise. No OFFSET, no count."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleGreaterThanOrEqual, TupleLessThan, TupleLessThanOrEqual

from together.exceptions import ValidationFailed

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
PARAMS = ("limit", "starting_after", "ending_before")


@dataclass(frozen=True)
class KeysetOrdering:
    """A total order for keyset pages: `keys` (field paths, NOT NULL, e.g.
    "amount_cents" or "donor__sort_name") then the primary key, all in one
    direction, so one row comparison `(keys…, id) < cursor` finds the next page
    and one index on (organisation, keys…, id) serves both directions.

    `prefix` > 0 also emits the inclusive comparison on the first `prefix` keys
    alone, for keys that live on a joined table: that one can be an index
    condition there (PostgreSQL does not split a row comparison across tables)."""

    keys: tuple
    descending: bool = True
    prefix: int = 0

    def expressions(self, keys=None) -> list:
        return [F(k) if isinstance(k, str) else k for k in (self.keys if keys is None else keys)]

    def order_by(self, backwards: bool = False) -> list:
        down = self.descending != backwards
        return [e.desc() if down else e.asc() for e in self.expressions((*self.keys, "pk"))]

    def after(self, cursor: tuple, backwards: bool = False) -> Q:
        """Rows after `cursor` (its key values then its id) in page order."""
        down = self.descending != backwards
        strict, loose = (TupleLessThan, TupleLessThanOrEqual) if down else (TupleGreaterThan, TupleGreaterThanOrEqual)
        condition = Q(strict(self.expressions((*self.keys, "pk")), list(cursor)))
        if self.prefix:
            condition &= Q(loose(self.expressions(self.keys[: self.prefix]), list(cursor[: self.prefix])))
        return condition


CREATED = KeysetOrdering(keys=("created_at",))


def ordering_choose(filterset_class, value: str | None) -> tuple[str, KeysetOrdering]:
    """The sort named `value` among the filterset's `orderings` (its default when
    blank): (name, ordering). An unknown name is 400 with param `ordering`."""
    orderings = getattr(filterset_class, "orderings", None) or {}
    name = value or getattr(filterset_class, "default_ordering", "")
    if not name and not orderings:
        return "", CREATED
    if name not in orderings:
        raise ValidationFailed(f"ordering must be one of {', '.join(orderings)}; got '{value}'.", param="ordering")
    return name, orderings[name]


@dataclass
class Page:
    rows: list
    has_more: bool

    @classmethod
    def of(cls, rows: list, limit: int, *, backwards: bool) -> "Page":
        """The page from a query's rows (`limit + 1` asked, the extra one says there is more)."""
        has_more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        return cls(rows=rows, has_more=has_more)


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

    def paginate(self, queryset: QuerySet, query_params, *, values: tuple[str, ...] | None = None,
                 ordering: KeysetOrdering | None = None, fetch=list) -> Page:
        """`fetch(queryset)` runs the page's query (e.g. together.api.sqljson.fetch_prepared)."""
        if queryset.ordered and queryset.query.order_by:
            raise ValueError("KeysetPagination orders the queryset itself; do not order it beforehand.")
        limit = parse_limit(query_params.get("limit"))
        starting_after = query_params.get("starting_after")
        ending_before = query_params.get("ending_before")
        if starting_after and ending_before:
            raise ValidationFailed("Send starting_after or ending_before, not both.", param="ending_before")
        if ordering is None or ordering == CREATED:
            return self._paginate_created(queryset, limit, starting_after, ending_before, values, fetch)
        backwards = bool(ending_before)
        if starting_after or ending_before:
            param = "starting_after" if starting_after else "ending_before"
            cursor_id = starting_after or ending_before
            cursor = queryset.filter(pk=cursor_id).values_list(*ordering.expressions(), "pk").first()
            if cursor is None:
                raise ValidationFailed(f"{param} '{cursor_id}' is not an object in this list.", param=param)
            queryset = queryset.filter(ordering.after(cursor, backwards))
        queryset = queryset.order_by(*ordering.order_by(backwards))
        return self._page(queryset, limit, backwards, values, fetch)

    def _paginate_created(self, queryset, limit, starting_after, ending_before, values, fetch) -> Page:
        """The cursor's (created_at, id) is read by the page's own query (a sub-select
        in the same scope and filters, so a cursor outside them matches nothing): one
        statement a page, deep or not. Only an empty page asks whether the cursor was
        in the list at all (400 if not)."""
        table = queryset.model._meta.db_table
        backwards = False
        cursor_scope = None
        if starting_after or ending_before:
            cursor_id = starting_after or ending_before
            cursor_scope = queryset.filter(pk=cursor_id)
            cursor_sql, cursor_params = cursor_scope.values_list("created_at", "pk").order_by().query.sql_with_params()
            op = "<" if starting_after else ">"
            backwards = bool(ending_before)
            queryset = queryset.extra(
                where=[f'("{table}"."created_at", "{table}"."id") {op} ({cursor_sql})'], params=list(cursor_params)
            )
        order = ("created_at", "id") if backwards else ("-created_at", "-id")
        queryset = queryset.order_by(*order)
        page = self._page(queryset, limit, backwards, values, fetch)
        if cursor_scope is not None and not page.rows and not cursor_scope.exists():
            param = "starting_after" if starting_after else "ending_before"
            raise ValidationFailed(f"{param} '{starting_after or ending_before}' is not an object in this list.", param=param)
        return page

    @staticmethod
    def _page(queryset, limit, backwards, values, fetch=list) -> Page:
        if values is not None:
            queryset = queryset.values(*values)
        return Page.of(fetch(queryset[: limit + 1]), limit, backwards=backwards)

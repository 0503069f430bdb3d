"""Helpers the dashboard views share: service calls that land errors beside
their fields, and keyset pagination over the API's own filtersets."""
from __future__ import annotations

from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from together.api.filters import FilterBackend
from together.api.pagination import CREATED, KeysetPagination, ordering_choose
from together.exceptions import ApplicationError

# Where a service's `param` lands on a dashboard form when the names differ
# (a form's own `param_fields` comes first).
PARAM_TO_FIELD = {"donor_id": "donor", "campaign_id": "campaign", "amount_cents": "amount"}


def field_for_param(form, param: str | None) -> str | None:
    """The form field a service's `param` is about: the field of that name, the
    form's `param_fields` entry, or the shared PARAM_TO_FIELD entry; None (an
    error on the whole form) when the form has no such field."""
    if not param:
        return None
    for name in (param, getattr(form, "param_fields", {}).get(param), PARAM_TO_FIELD.get(param)):
        if name and name in form.fields:
            return name
    return None


def add_service_error(form, exc: ApplicationError) -> None:
    """Put a service's refusal beside the field it names (or on the form)."""
    form.add_error(field_for_param(form, exc.param), exc.message)


def call_service(form, fn, **kwargs):
    """Call a service; on refusal put its message beside the field named by
    `param` (or on the form) and return None. Nothing is stored on refusal."""
    try:
        return fn(**kwargs)
    except ApplicationError as exc:
        add_service_error(form, exc)
        return None


class DashboardPage:
    """One keyset page of `queryset` filtered by `filterset_class` from GET, in the
    order `?ordering=` names among the filterset's `orderings` (its default when
    absent). Sort, filters and cursor all live in the URL, so a view can be
    bookmarked or shared."""

    def __init__(self, request, queryset, *, filterset_class=None, values=None, limit: int = 25):
        params = request.GET.copy()
        params.setdefault("limit", str(limit))
        self.filterset = None
        self.error = None
        self.ordering_name, ordering = "", CREATED
        try:
            self.ordering_name, ordering = ordering_choose(filterset_class, params.get("ordering"))
            scope = getattr(filterset_class, "ordering_scope", None)
            if scope is not None:
                queryset = scope(queryset, self.ordering_name)
        except ApplicationError as exc:
            self.error = exc.message
        if filterset_class is not None:
            data = {k: v for k, v in params.items() if v != "" and k not in ("limit", "starting_after", "ending_before", "ordering")}
            self.filterset = filterset_class(data=data, queryset=queryset, request=request)
            if self.filterset.is_valid():
                queryset = self.filterset.qs
            else:
                self.error = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.filterset.errors.items())
        try:
            page = KeysetPagination().paginate(queryset, params, values=values, ordering=ordering)
            self.rows, self.has_more = page.rows, page.has_more
        except ApplicationError as exc:
            self.error, self.rows, self.has_more = exc.message, [], False
        base = {k: v for k, v in request.GET.items() if k not in ("starting_after", "ending_before") and v != ""}
        backwards = "ending_before" in request.GET
        at_start = not request.GET.get("starting_after") and not backwards
        self.next = None
        self.prev = None
        if self.rows:
            last_id = self.rows[-1]["id"] if isinstance(self.rows[-1], dict) else self.rows[-1].pk
            first_id = self.rows[0]["id"] if isinstance(self.rows[0], dict) else self.rows[0].pk
            if self.has_more or backwards:
                self.next = urlencode({**base, "starting_after": last_id})
            if not at_start and (self.has_more or not backwards):
                self.prev = urlencode({**base, "ending_before": first_id})

    def context(self) -> dict:
        return {"rows": self.rows, "page_next": self.next, "page_prev": self.prev, "filter_error": self.error, "filterset": self.filterset,
                "ordering": self.ordering_name}


LIST_PARAMS = ("starting_after", "ending_before")


def list_query(request, **changes) -> str:
    """The list's query string (filters and sort) without its cursor, with `changes` applied."""
    params = {k: v for k, v in request.GET.items() if k not in LIST_PARAMS and v != ""}
    params.update(changes)
    return urlencode({k: v for k, v in params.items() if v})


def sort_links(request, current: str, columns: dict[str, str]) -> dict[str, dict]:
    """Each sortable column (name -> the direction it starts in, "" ascending or "-"
    descending): the query string that sorts by it (the other way when it is the
    current sort) and its aria-sort ("ascending", "descending" or "none")."""
    out = {}
    for name, first in columns.items():
        if current == name:
            state, flip = "ascending", f"-{name}"
        elif current == f"-{name}":
            state, flip = "descending", name
        else:
            state, flip = "none", f"{first}{name}"
        out[name] = {"query": list_query(request, ordering=flip), "aria_sort": state}
    return out


def url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


__all__ = ["add_service_error", "call_service", "DashboardPage", "field_for_param", "FilterBackend", "list_query", "sort_links",
           "url_or_none"]

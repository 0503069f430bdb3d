"""Helpers the dashboard views share: service calls that land errors beside
their fields, and keyset pagination over the API's own filtersets."""
from __future__ import annotations

from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse

from together.api.filters import FilterBackend
from together.api.pagination import KeysetPagination
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
    """One keyset page of `queryset` filtered by `filterset_class` from GET."""

    def __init__(self, request, queryset, *, filterset_class=None, values=None, limit: int = 25):
        params = request.GET.copy()
        params.setdefault("limit", str(limit))
        self.filterset = None
        self.error = None
        if filterset_class is not None:
            data = {k: v for k, v in params.items() if v != "" and k not in ("limit", "starting_after", "ending_before")}
            self.filterset = filterset_class(data=data, queryset=queryset)
            if self.filterset.is_valid():
                queryset = self.filterset.qs
            else:
                self.error = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.filterset.errors.items())
        try:
            page = KeysetPagination().paginate(queryset, params, values=values)
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
        return {"rows": self.rows, "page_next": self.next, "page_prev": self.prev, "filter_error": self.error, "filterset": self.filterset}


def url_or_none(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


__all__ = ["add_service_error", "call_service", "DashboardPage", "field_for_param", "FilterBackend", "url_or_none"]

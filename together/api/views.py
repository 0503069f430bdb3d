"""The API's base views: every endpoint inherits the machinery from here.

`ApiMixin` owns the request cycle (authentication, rate limit, scope check,
query-parameter and Content-Type strictness, Idempotency-Key, rate-limit
headers). `OrganisationViewSet` is the tenancy choke point: its querysets
always start from the organisation the API key resolved.
"""
from __future__ import annotations

import copy
import functools

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from together.api.filters import FilterBackend, accepts_dynamic, check_query_params
from together.api.pagination import PARAMS as PAGINATION_PARAMS
from together.api.pagination import KeysetPagination, Page, parse_limit
from together.api.renderers import dumps
from together.api.sqljson import compiled_statement, fetch_prepared, run_prepared
from together.api.throttling import rate_limit_take
from together.exceptions import InvalidRequest, NotFound, RateLimited
from together.idempotency import idempotent_call


class ApiMixin:
    """DRF's request cycle, extended through its hooks.

    DRF's `dispatch` runs `initial()` (content negotiation, versioning,
    `perform_authentication`, `check_permissions`, `check_throttles`), then the
    handler, then `finalize_response()`; any error goes to `handle_exception()`
    and our EXCEPTION_HANDLER. Ours adds: the organisation's rate limit right
    after authentication (so a 403, 404 or 405 is counted and carries the
    RateLimit headers), 405 before the scope check, the query-parameter and
    Content-Type strictness, and Idempotency-Key around a POST or PATCH handler."""

    http_method_names = ["get", "post", "patch", "delete"]
    rate_limited = True
    # Query parameters accepted besides the filterset's and pagination's.
    extra_query_params: tuple[str, ...] = ()

    # -- the request cycle -------------------------------------------------
    # DRF makes each response part of two reference cycles: the view keeps it (`self.response`)
    # and it keeps the view (`renderer_context["view"]`), and rendering puts the response in its
    # own `renderer_context["response"]`. Only the cyclic GC frees a cycle, so under a threaded
    # server every rendered body (100 KB for a list page) outlived its request until a collection
    # came round, and each thread's malloc arena kept the high-water mark: about 8 MB a thread of
    # a gunicorn worker that had served list pages (issue 15's export row measures that worker).
    # `dispatch` and `_release_after_render` cut both links, so a body goes when the server
    # drops the response.
    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        self.response = None
        return response

    @staticmethod
    def _release_after_render(response):
        context = getattr(response, "renderer_context", None)
        if context is not None:
            context.pop("response", None)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.check_request_shape(request)
        self.make_idempotent(request)

    def perform_authentication(self, request):
        if getattr(self, "required_scope", "DEFAULT") is None and not request.META.get("HTTP_AUTHORIZATION"):
            return
        # The authenticator takes the organisation's token in its own Redis round trip when asked.
        request._request.rate_limit_wanted = self.wants_rate_limit()
        super().perform_authentication(request)  # request.user: ApiKeyAuthentication
        self.take_rate_limit(request)

    def check_permissions(self, request):
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            self.http_method_not_allowed(request)  # 405 whatever the key's scope
        super().check_permissions(request)

    def make_idempotent(self, request):
        """With an Idempotency-Key, run this POST or PATCH through `idempotent_call`
        (stored with its effect, replayed after). DRF's dispatch looks the handler
        up after `initial()`, so it calls the wrapped one."""
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method not in ("POST", "PATCH"):
            return
        method = request.method.lower()
        handler = getattr(self, method)

        def idempotent_handler(request, *args, **kwargs):
            return idempotent_call(request=request, key=key, call=lambda: handler(request, *args, **kwargs),
                                   render=self._render_bytes)

        setattr(self, method, idempotent_handler)

    @staticmethod
    def _render_bytes(response) -> bytes:
        if isinstance(response, Response):
            return dumps(response.data) if response.data is not None else b""
        return bytes(response.content)

    def wants_rate_limit(self) -> bool:
        from django.conf import settings

        return bool(self.rate_limited and settings.RATE_LIMIT_ENABLED)

    def take_rate_limit(self, request):
        organisation = getattr(request, "organisation", None)
        if organisation is None or not self.wants_rate_limit():
            return
        result = getattr(request._request, "rate_limit", None)  # taken by the authenticator's round trip
        if result is None:
            result = rate_limit_take(organisation_id=organisation.id)
            request._request.rate_limit = result
        if not result.allowed:
            raise RateLimited(
                f"Rate limit of {result.limit} requests per second for this organisation exceeded. Retry after {result.retry_after} s.",
                retry_after=result.retry_after,
            )

    def check_request_shape(self, request):
        allowed = set(self.get_allowed_query_params())
        check_query_params(request.query_params, allowed)
        if request.method in ("POST", "PATCH", "PUT"):
            content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            has_body = int(request.META.get("CONTENT_LENGTH") or 0) > 0
            # An empty body may come without a type (wsgiref reports that as text/plain).
            declared = content_type not in ("", "text/plain") or has_body
            if declared and content_type != "application/json":
                raise InvalidRequest(
                    "POST and PATCH bodies must be sent with Content-Type: application/json.", param="Content-Type"
                )

    def get_allowed_query_params(self) -> set[str]:
        return set(self.extra_query_params)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):
            response.add_post_render_callback(self._release_after_render)
        result = getattr(request._request if hasattr(request, "_request") else request, "rate_limit", None)
        if result is not None:
            for name, value in result.headers().items():
                response[name] = value
        return response


class ApiView(ApiMixin, APIView):
    pass


class OrganisationViewSet(ApiMixin, GenericViewSet):
    """Base for every tenant resource.

    Subclasses set `fields` (the `.values()` paths a row needs), `render(row)`
    (the lean JSON object), `filterset_class`, and override
    `get_base_queryset()`. They never call `Model.objects` directly. `list` and
    `retrieve` are here; the router routes them for every resource."""

    filter_backends = [FilterBackend]
    # The filterset of each list-like action, e.g. {"list": DonorFilterSet}.
    filtersets: dict = {}
    pagination = KeysetPagination()
    fields: tuple[str, ...] = ()
    expandable: tuple[str, ...] = ()
    lookup_value_regex = "[^/]+"

    # -- tenancy -----------------------------------------------------------
    def get_base_queryset(self):
        """The model's manager (or a queryset of it with select_related…).
        Never scoped here: get_queryset scopes it, in one place."""
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            # Schema generation: no organisation. A list-like action documents the
            # filters of its own filterset (donors/{id}/donations lists donations).
            filterset = self.filterset_class
            if filterset is not None:
                return filterset._meta.model.objects.none()
            return self.get_base_queryset().none()
        return self.get_base_queryset().for_organisation(self.request.organisation)

    # -- query parameters --------------------------------------------------
    def get_allowed_query_params(self) -> set[str]:
        allowed = set(self.extra_query_params)
        if self.expandable:
            allowed.add("expand[]")
        if getattr(self, "action", None) in self.list_actions():
            allowed.update(PAGINATION_PARAMS)
            if self.filterset_class is not None:
                allowed.update(self.filterset_class.base_filters.keys())
                allowed.update(n for n in self.request.query_params if accepts_dynamic(self.filterset_class, n))
        return allowed

    def list_actions(self) -> set[str]:
        return {"list", *self.filtersets}

    @property
    def filterset_class(self):
        return self.filtersets.get(getattr(self, "action", None))

    def expand(self) -> set[str]:
        requested = set(self.request.query_params.getlist("expand[]"))
        unknown = requested - set(self.expandable)
        if unknown:
            from together.exceptions import ValidationFailed

            raise ValidationFailed(
                f"Cannot expand {', '.join(sorted(unknown))}; expandable: {', '.join(self.expandable)}.", param="expand[]"
            )
        return requested

    # -- the read actions every resource has ----------------------------------------
    def list(self, request):
        return self.list_compiled_page() or self.list_response(self.get_list_queryset())

    def list_compiled_page(self) -> Response | None:
        """A list page whose statement was compiled for its shape and checked (a request
        naming nothing but pagination: together.api.sqljson.compiled_statement), run
        without building its queryset; None when the page must take list_response's way
        (first requests of a shape, filters, an empty page after a cursor: its 400)."""
        row_json = self.list_row_json()
        fetch = self.list_fetch() if row_json is not None else None
        if not isinstance(fetch, functools.partial):
            return None
        params = self.request.query_params
        if params.get("starting_after") and params.get("ending_before"):
            return None
        compiled = compiled_statement(fetch.keywords["shape"], fetch.keywords["variables"])
        if compiled is None:
            return None
        limit = parse_limit(params.get("limit"))
        rows = run_prepared(*compiled)
        if not rows and (params.get("starting_after") or params.get("ending_before")):
            return None
        page = Page.of(rows, limit, backwards=bool(params.get("ending_before")))
        return Response({"data": row_json.fragment(page.rows), "has_more": page.has_more})

    def retrieve(self, request, pk=None):
        return self.respond_object(pk)

    def get_list_queryset(self):
        """What `list` pages through (a subclass may narrow it, e.g. active rows only)."""
        return self.get_queryset()

    # -- rendering -----------------------------------------------------------
    def render(self, row: dict) -> dict:
        raise NotImplementedError

    def render_rows(self, rows: list[dict]) -> list[dict]:
        return [self.render(row) for row in rows]

    def list_row_json(self):
        """A together.api.sqljson.RowJson when PostgreSQL writes this list's rows (the same bytes as
        render_rows), else None."""
        return None

    def list_fetch(self):
        """How a list page's query runs: prepared; and, when the request names nothing but
        pagination (no filter, no expand), compiled once per shape of this view (limit,
        direction), the organisation and cursor ids filled in (together.api.sqljson)."""
        params = self.request.query_params
        if not set(params) <= set(PAGINATION_PARAMS) or any(len(params.getlist(k)) > 1 for k in params):
            return fetch_prepared
        cursor_param = next((k for k in ("starting_after", "ending_before") if params.get(k)), "")
        shape = (type(self), getattr(self, "action", None), params.get("limit"), cursor_param)
        variables = {"organisation": self.request.organisation.id}
        if cursor_param:
            variables["cursor"] = params[cursor_param]
        return functools.partial(fetch_prepared, shape=shape, variables=variables)

    def list_response(self, queryset) -> Response:
        queryset = self.filter_queryset(queryset)
        row_json = self.list_row_json()
        if row_json is not None:
            page = self.pagination.paginate(queryset.annotate(**row_json.annotations()), self.request.query_params,
                                            values=row_json.values, fetch=self.list_fetch())
            return Response({"data": row_json.fragment(page.rows), "has_more": page.has_more})
        page = self.pagination.paginate(queryset, self.request.query_params, values=self.fields)
        return Response({"data": self.render_rows(page.rows), "has_more": page.has_more})

    def get_row(self, pk: str) -> dict:
        row = self.get_queryset().filter(pk=pk).values(*self.fields).first()
        if row is None:
            raise NotFound(f"{self.object_label()} not found.")
        return row

    def get_instance(self, pk: str):
        try:
            return self.get_queryset().get(pk=pk)
        except (self.get_queryset().model.DoesNotExist, ValueError):
            raise NotFound(f"{self.object_label()} not found.") from None

    def object_label(self) -> str:
        return self.get_base_queryset().model._meta.verbose_name.capitalize()

    def respond_object(self, pk: str, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.render_rows([self.get_row(pk)])[0], status=status_code)

    # -- input -------------------------------------------------------------
    def validate_input(self, serializer_class, *, partial: bool = False, require_body: bool = True) -> dict:
        data = self.request.data
        if data is None or (hasattr(data, "keys") and not data and require_body and not partial):
            if require_body:
                raise InvalidRequest("The request body is empty; send a JSON object.")
            data = {}
        if partial and not data:
            raise InvalidRequest("The request body is empty; send the fields to change.")
        serializer = input_serializer(serializer_class, data=data, partial=partial, context={"request": self.request, "view": self})
        unknown = set(data.keys()) - set(serializer.fields.keys())
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidRequest(f"Unknown field '{name}'.", param=name)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


# An input serializer's fields, declared once per class (issue 15). DRF deep-copies every
# declared field for each instance, which re-runs each field's __init__ (its validators
# too): a tenth of a create's CPU. Here each class's fields are made once, and an instance
# binds shallow copies of them (its own attributes: name, parent, source); a field holding
# other fields (a nested serializer, a list or dict of a child) is still deep-copied, so no
# bound field is shared between requests.
_FIELD_PROTOTYPES: dict[type, dict] = {}
_COMPOUND_FIELDS = (serializers.BaseSerializer, serializers.ListField, serializers.DictField, serializers.HStoreField)


def input_serializer(serializer_class, **kwargs) -> serializers.Serializer:
    serializer = serializer_class(**kwargs)
    if type(serializer).get_fields is not serializers.Serializer.get_fields:
        return serializer  # fields of its own making: DRF's way
    prototypes = _FIELD_PROTOTYPES.get(serializer_class)
    if prototypes is None:
        prototypes = _FIELD_PROTOTYPES[serializer_class] = serializer.get_fields()
    fields = serializers.BindingDict(serializer)
    for name, field in prototypes.items():
        fields[name] = copy.deepcopy(field) if isinstance(field, _COMPOUND_FIELDS) or hasattr(field, "child") else copy.copy(field)
    serializer.__dict__["fields"] = fields  # what the `fields` cached_property would have computed
    return serializer


@extend_schema(exclude=True)
class ApiNotFoundView(ApiView):
    """Unknown routes under /api/ answer the 404 envelope, for every method.

    It runs the same cycle as every endpoint: an APIView is CSRF-exempt (a POST
    must not meet Django's HTML CSRF page), a sent key is checked (401 when
    unknown) and takes its token from the organisation's bucket, so the 404
    carries the rate-limit headers. Without a key it is a plain 404.
    """

    required_scope = None
    rate_limited = True
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options", "trace"]

    @property
    def default_response_headers(self):
        return {}  # no `Allow`: the route does not exist

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)  # any Accept gets the JSON 404

    def check_permissions(self, request):
        raise NotFound(f"No such route: {request.method} {request.path}.")


api_not_found = ApiNotFoundView.as_view()


__all__ = ["ApiView", "OrganisationViewSet", "api_not_found"]

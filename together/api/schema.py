"""OpenAPI: the document is the whole truth about every operation, parameter,
header, body and event, generated here so that a new endpoint is born typed.

- `AutoSchema` (every API view) adds what the machinery in together/api/views.py
  does to every request: the `Idempotency-Key` header on POST/PATCH, the
  response headers (x-request-id, RateLimit-*, Retry-After, Idempotent-Replayed),
  the error responses, `minLength: 1` on query strings (an empty value is a 400),
  `*_list` operation ids for list-like actions, and a real description for
  every operation (never a base class's docstring).
- `TogetherFilterExtension` types the filters of a FilterSet exactly as
  FilterBackend parses them; `filter_parameters` gives the reports the same.
- `postprocess` fixes the document-level facts of the reference (api.md §4),
  forbids unknown body fields, adds the webhooks section and an example to
  every request body and JSON response.
"""
from __future__ import annotations

import copy
import inspect
import re

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.drainage import set_override
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from together.exceptions import ERROR_CODES

TAGS = [
    {"name": "meta", "description": "Health and identity checks"},
    {"name": "organisations", "description": "Organisation self-service"},
    {"name": "donors", "description": "Donor records"},
    {"name": "donations", "description": "Donation records"},
    {"name": "forms", "description": "Donation forms"},
    {"name": "checkout-links", "description": "One-off checkout links (/c/{code}) for pre-filled donations"},
    {"name": "recommendation-sets", "description": "Recommendation sets"},
    {
        "name": "recipient-accounts",
        "description": "Recipient-org Stripe accounts this organisation has linked via passphrase exchange. Use these as `recipient_org_account_link_id` when building recommendation-set allocations.",
    },
    {
        "name": "introductions",
        "description": "Programmatically introduce prospective recipient organisations to Together. Sends an invite email + tracks the prospect through pending → viewed → accepted → linked. Listen for `introduction.linked` to learn when the resulting `recipient_org_account_link_id` is usable. Raise+ entitlement.",
    },
    {
        "name": "webhooks",
        "description": "Outbound webhook events we POST to receiver endpoints. See /developer/webhooks for delivery semantics (signing, retries, idempotency).",
    },
    # Ours, after the reference's ten (api.md §4 names those, in that order).
    {"name": "campaigns", "description": "Campaigns that donations count toward, with their totals"},
    {"name": "compliance", "description": "Revenue codes, election periods, disclosure obligations, breaches and the organisation's compliance settings"},
    {"name": "reports", "description": "Reports as CSV or XLSX files, streamed"},
    {"name": "tags", "description": "Tags the organisation puts on donors: created, renamed and deleted here, put on and taken off a donor under /donors/{id}/tags, and filtered on with `?tag=`"},
    {"name": "recurring-plans", "description": "Recurring plans: a donor's regular gift, charged off-session by card or expected from a bank standing order, once per period, never past the donor's cap"},
    {"name": "imports", "description": "Imports of donors and gifts from a CSV or XLSX file: upload (multipart), poll the dry run, commit as a background job, fetch the result CSV"},
    {"name": "custom-fields", "description": "The organisation's own fields on donors and gifts (text, number, date, yes/no, choice): their values are in each record's `custom_fields`, and lists filter on them with `cf_<key>`"},
]


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.URLField(help_text="Same as doc_url.")
    code = serializers.ChoiceField(choices=sorted(ERROR_CODES), help_text="Stable, machine-readable; branch on it.")
    message = serializers.CharField(help_text="For humans; wording may change.")
    param = serializers.CharField(required=False, help_text="The field or parameter at fault, e.g. `allocations[2].amount_cents`.")
    existing_id = serializers.CharField(required=False, help_text="With `conflict` on a duplicate (a donor's email, a revenue code): the id of the record that already exists.")
    reason = serializers.CharField(required=False, help_text="Extra machine-readable detail for some business rules, e.g. `donor_cap_exceeded`, `too_large_for_xlsx`.")
    remaining_cents = serializers.IntegerField(required=False, help_text="With reason `donor_cap_exceeded`: the room left under the cap.")
    request_id = serializers.CharField(help_text="`req_…`, equal to the x-request-id header.")
    doc_url = serializers.URLField(help_text="The page of /developer/api/errors that explains `code`.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()

    class Meta:
        ref_name = "ErrorEnvelope"


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)


def list_envelope(name: str, item_serializer) -> serializers.Serializer:
    """`{"data": [...], "has_more": bool}`. Marked many=False: on a list action
    drf-spectacular would otherwise document the envelope as an array of envelopes."""
    envelope = inline_serializer(
        name=name,
        fields={
            "data": item_serializer(many=True, help_text="This page, newest first."),
            "has_more": serializers.BooleanField(help_text="More objects follow: ask again with `starting_after=<id of the last>`."),
        },
    )
    set_override(envelope, "many", False)
    return envelope


# --- headers --------------------------------------------------------------------------------

HEADERS = {
    "XRequestId": {
        "description": "`req_…`: this request's id, equal to `error.request_id`. Quote it to support.",
        "schema": {"type": "string", "pattern": "^req_"},
        "required": True,
    },
    "RateLimitLimit": {
        "description": "Requests per second this organisation may make (live and sandbox counted apart). Sent when a key identified the organisation.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimitRemaining": {
        "description": "Requests left in the bucket now.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimitReset": {
        "description": "Seconds until the bucket is full again.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RetryAfter": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
        "required": True,
    },
    "IdempotentReplayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key` (nothing was done again).",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "Makes retries safe: a repeat with the same key, method, path and body within 24 hours answers the stored "
        "success (with `Idempotent-Replayed: true`) instead of acting again. The same key with a different request is "
        "409 `idempotency_conflict`; while the first is still running, 409 `conflict`. A UUID is ideal."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    "example": "6f1f2a5e-3c1d-4b4e-9a57-1d2f0c9b7e11",
}


# Patterns the server's parsers enforce (together/api/fields.py, together/input_guard.py,
# together/api/filters.py), so that a schema-valid request is one the server accepts.
ANY_TEXT = "^[^\\x00]*$"
NON_BLANK_TEXT = "^[^\\x00]*[^\\x00\\s][^\\x00]*$"
BODY_DATE_PATTERN = "^(19[0-9]{2}|2[0-9]{3})-[0-9]{2}-[0-9]{2}$"  # StrictDateField: 1900-01-01 to 2999-12-31
QUERY_TEXT = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]+$"  # no C0 control character but tab, LF, CR
QUERY_DATETIME_YEARS = "^(0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2})-"  # within the filters' years 2 to 9998, any offset


def _header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


# --- filters ---------------------------------------------------------------------------------

def filter_schema(filter_field) -> dict | None:
    """The schema of one query parameter, as FilterBackend parses it (None: let
    drf-spectacular decide). Shared by the list endpoints and the reports."""
    import django_filters

    from together.api.filters import BIGINT_MAX, DateTimeBoundFilter, StrictIntegerFilter

    if isinstance(filter_field, DateTimeBoundFilter):
        return {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    if isinstance(filter_field, StrictIntegerFilter):
        return {"type": "integer", "minimum": -BIGINT_MAX, "maximum": BIGINT_MAX}
    if isinstance(filter_field, django_filters.BooleanFilter):
        return {"type": "boolean"}
    if isinstance(filter_field, django_filters.ChoiceFilter):
        choices = filter_field.extra.get("choices")
        if callable(choices):
            choices = choices()
        if choices:
            return {"type": "string", "enum": [str(value) for value, _label in choices]}
    if isinstance(filter_field, django_filters.DateFilter):
        return {"type": "string", "format": "date"}
    if isinstance(filter_field, django_filters.CharFilter):
        return {"type": "string", "minLength": 1, "maxLength": 1000}
    return None


OPERATOR_WORDS = {"gte": "on or after / at least", "gt": "after / more than", "lte": "on or before / at most", "lt": "before / less than"}


def filter_description(name: str, filter_field) -> str:
    help_text = filter_field.extra.get("help_text")
    if help_text:
        return str(help_text)
    match = re.fullmatch(r"(\w+)\[(gte|gt|lte|lt)\]", name)
    if match:
        field, op = match.groups()
        return f"Only objects whose `{field}` is {OPERATOR_WORDS[op]} this value."
    return f"Only objects whose `{name}` equals this value."


def filter_parameters(filterset_class, names) -> list[OpenApiParameter]:
    filters = filterset_class.get_filters()
    out = []
    for name in names:
        f = filters[name]
        schema = filter_schema(f) or {"type": "string", "minLength": 1}
        out.append(OpenApiParameter(name, schema, required=False, description=filter_description(name, f)))
    return out


class TogetherFilterExtension(DjangoFilterExtension):
    target_class = "together.api.filters.FilterBackend"
    match_subclasses = True
    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        params = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        schema = filter_schema(filter_field)
        for param in params:
            if schema is not None:
                param["schema"] = copy.deepcopy(schema)
            param["description"] = filter_description(field_name, filter_field)
        return params


# --- descriptions ----------------------------------------------------------------------------

def _own_doc(obj) -> str:
    """A function's or class's OWN docstring (inspect.getdoc would inherit a base's)."""
    doc = getattr(obj, "__doc__", None)
    if isinstance(obj, type) and "__doc__" not in obj.__dict__:
        return ""
    return inspect.cleandoc(doc) if doc else ""


def base_docstrings() -> list[str]:
    """Docstrings of the machinery every view inherits: never an operation's description."""
    from rest_framework.views import APIView
    from rest_framework.viewsets import GenericViewSet

    from together.api.views import ApiMixin, ApiView, OrganisationViewSet

    out = []
    for cls in (OrganisationViewSet, ApiMixin, ApiView, GenericViewSet, APIView):
        for klass in cls.__mro__:
            doc = inspect.getdoc(klass)
            if doc and klass is not object:
                out.append(doc)
    return out


SCOPE_TEXT = {"READ": "Any key (READ or WRITE).", "WRITE": "Needs a WRITE key.", None: "No key needed."}


class AutoSchema(SpectacularAutoSchema):
    def _required_scope(self):
        scope = getattr(self.view, "required_scope", "DEFAULT")
        if isinstance(scope, dict):
            scope = scope.get(self.method.upper(), "DEFAULT")
        return scope

    def _effective_scope(self):
        scope = self._required_scope()
        if scope == "DEFAULT":
            scope = "READ" if self.method.upper() in ("GET", "HEAD", "OPTIONS") else "WRITE"
        return scope

    def _is_list_action(self) -> bool:
        list_actions = getattr(self.view, "list_actions", None)
        return self.method == "GET" and callable(list_actions) and getattr(self.view, "action", None) in list_actions()

    # -- names -------------------------------------------------------------------------
    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        if self._is_list_action() and operation_id.endswith("_retrieve"):
            operation_id = operation_id[: -len("_retrieve")] + "_list"
        return operation_id

    def _labels(self) -> tuple[str, str]:
        model = None
        for getter in (lambda: self.view.get_queryset().model, lambda: self.view.get_base_queryset().model,
                       lambda: self.view.queryset.model):
            try:
                model = getter()
                break
            except Exception:  # noqa: BLE001 - schema time: no request, no organisation
                continue
        if model is None:
            return "object", "objects"
        label, plural = str(model._meta.verbose_name), str(model._meta.verbose_name_plural)
        if plural == label + "s" and label.endswith(("ch", "sh", "s", "x", "z")):
            plural = label + "es"  # Django's default plural only appends "s"
        return label, plural

    def _parent_label(self) -> str:
        try:
            return self.view.object_label().lower()
        except Exception:  # noqa: BLE001
            return "object"

    def get_description(self) -> str:
        action = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        doc = _own_doc(action) if action is not None else ""
        if doc and doc not in base_docstrings():
            return doc
        return ""

    def _generated_description(self, operation: dict) -> str:
        action = getattr(self.view, "action", None)
        label, plural = self._labels()
        scope = SCOPE_TEXT[self._effective_scope()]
        if self._is_list_action():
            filters = [p["name"] for p in operation.get("parameters", [])
                       if p["in"] == "query" and p["name"] not in ("limit", "starting_after", "ending_before", "expand[]")]
            nested = self.path.count("{") > 0
            lead = (f"The {plural} of one {self._parent_label()} (404 `not_found` when it is not this organisation's)"
                    if nested else f"This organisation's {plural}")
            text = (f"{lead}, newest first (by `created_at`, then `id`), as `{{\"data\": [...], \"has_more\": bool}}`. "
                    "`limit` (1 to 100, default 10) sets the page size; continue with `starting_after=<id of the last>`, "
                    "or go back with `ending_before=<id of the first>`. ")
            if filters:
                text += "Filters: " + ", ".join(f"`{f}`" for f in filters) + ". "
            text += "An unknown or repeated parameter, or an empty value, is 400 `invalid_request`; a malformed value is 400 `validation_failed` naming it."
            return f"{text} {scope}"
        if action == "retrieve":
            return (f"One {label} of this organisation, by id. An unknown id, or one of another organisation "
                    f"(including the sandbox twin), is 404 `not_found`. {scope}")
        if action == "create":
            return f"Creates a {label} and answers 201 with it. {scope}"
        if action == "partial_update":
            return (f"Changes only the fields sent and answers 200 with the whole {label}; an empty body is 400 "
                    f"`invalid_request`. {scope}")
        if action == "destroy":
            return f"Deletes the {label}; 204 with no body. {scope}"
        summary = operation.get("summary") or ""
        return f"{summary}. {scope}".strip()

    # -- the operation -------------------------------------------------------------------------
    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        method = self.method.upper()
        scope = self._required_scope()
        # No key needed (e.g. health): say so, or the global `apiKey` requirement applies.
        if scope is None:
            operation["security"] = []
        description = operation.get("description", "")
        if not description or description in base_docstrings():
            operation["description"] = self._generated_description(operation)
        else:
            scope_text = SCOPE_TEXT[self._effective_scope()]
            if not any(t in description for t in ("WRITE key", "READ key", "Any key", "No key needed")):
                operation["description"] = f"{description.rstrip()}\n\n{scope_text}"
        if not operation.get("summary"):
            operation["summary"] = operation["description"].split(". ")[0].rstrip(".")[:100]
        parameters = operation.setdefault("parameters", [])
        for param in parameters:
            schema = param.get("schema", {})
            if param["in"] == "query" and schema.get("type") == "string" and "enum" not in schema:
                schema.setdefault("minLength", 1)
                if "format" not in schema and "pattern" not in schema:
                    schema["pattern"] = QUERY_TEXT
            if param["in"] == "query" and "anyOf" in schema:
                for branch in schema["anyOf"]:
                    if branch.get("format") in ("date", "date-time"):
                        branch.setdefault("pattern", QUERY_DATETIME_YEARS)
            if param["in"] == "query" and isinstance(schema.get("type"), list):
                # A query parameter is never JSON null.
                schema["type"] = [t for t in schema["type"] if t != "null"][0]
                if "enum" in schema:
                    schema["enum"] = [v for v in schema["enum"] if v is not None]
            if param["in"] == "path":
                schema.setdefault("minLength", 1)
                param.setdefault("description", "The object's id.")
        if method in ("POST", "PATCH"):
            parameters.append(copy.deepcopy(IDEMPOTENCY_KEY))
        if not parameters:
            del operation["parameters"]
        if "requestBody" in operation:
            operation["requestBody"]["required"] = True
        self._add_response_headers(operation["responses"], method)
        self._describe_responses(operation["responses"])
        return operation

    def _describe_responses(self, responses: dict) -> None:
        label, plural = self._labels()
        for code, response in responses.items():
            if response.get("description"):
                continue
            if code == "204":
                text = "Done; no body."
            elif self._is_list_action():
                text = f"A page of {plural}."
            elif code == "201":
                text = f"The {label} created."
            elif code == "202":
                text = "Accepted: queued."
            elif code.startswith("2") and "application/json" in response.get("content", {}):
                text = f"The {label}." if getattr(self.view, "list_actions", None) else "OK."
            else:
                text = "OK."
            response["description"] = text

    def _add_response_headers(self, responses: dict, method: str) -> None:
        keyed = self._required_scope() is not None and getattr(self.view, "rate_limited", True)
        for code, response in responses.items():
            headers = response.setdefault("headers", {})
            headers["x-request-id"] = _header_ref("XRequestId")
            if keyed and code not in ("401",):
                headers["RateLimit-Limit"] = _header_ref("RateLimitLimit")
                headers["RateLimit-Remaining"] = _header_ref("RateLimitRemaining")
                headers["RateLimit-Reset"] = _header_ref("RateLimitReset")
            if code in ("429", "503"):
                headers["Retry-After"] = _header_ref("RetryAfter")
            if method in ("POST", "PATCH") and code.startswith("2"):
                headers["Idempotent-Replayed"] = _header_ref("IdempotentReplayed")

    def _error_responses(self) -> dict:
        method = self.method.upper()
        scope = self._required_scope()
        out = {
            "400": error("invalid_request or validation_failed: malformed request, unknown parameter, or a value not allowed (`param` names it)."),
            "404": error("not_found: no such record in this organisation."),
            "405": error("method_not_allowed: the `Allow` header lists the methods this path accepts."),
            "429": error("rate_limited: wait `Retry-After` seconds."),
            "500": error("internal_error: nothing was half-stored; quote the request_id."),
            "503": error("service_unavailable: the database is briefly unavailable; wait `Retry-After` seconds."),
        }
        if scope is not None:
            out["401"] = error("unauthorized: missing, unknown or revoked API key.")
            out["403"] = error("forbidden: this key's scope does not allow the operation.")
        if method in ("POST", "PATCH", "DELETE"):
            out["409"] = error("conflict or idempotency_conflict (the detail's `existing_id` names a duplicate's original).")
        return out

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        from together.api.fields import PatternCharField

        from drf_spectacular.drainage import get_override, has_override

        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        annotation = get_override(field, "field") if has_override(field, "field") else field
        if isinstance(annotation, (serializers.ListSerializer, serializers.ListField)) and schema.get("type") == "array":
            if getattr(annotation, "min_length", None) is not None:
                schema.setdefault("minItems", annotation.min_length)
            if getattr(annotation, "max_length", None) is not None:
                schema.setdefault("maxItems", annotation.max_length)
            if getattr(annotation, "unique_items", False):  # the service refuses a repeat
                schema["uniqueItems"] = True
        if direction != "request" or schema.get("type") not in ("string", ["string", "null"]) or "enum" in schema:
            return schema
        if isinstance(field, PatternCharField):
            # The field's own rule (it matches the whole value); blank may be allowed.
            pattern = f"^(?:{field.pattern.pattern})$"
            schema["pattern"] = f"^$|{pattern}" if field.allow_blank else pattern
        elif isinstance(field, serializers.DateField):
            schema["pattern"] = BODY_DATE_PATTERN
        elif isinstance(field, serializers.CharField) and "pattern" not in schema and "format" not in schema:
            # The JSON parser refuses NUL anywhere; a required text (allow_blank=False)
            # is trimmed, then refused when empty: it must hold more than whitespace.
            required_text = not field.allow_blank and getattr(field, "trim_whitespace", False)
            schema["pattern"] = NON_BLANK_TEXT if required_text else ANY_TEXT
        return schema

    def _map_basic_serializer(self, serializer, direction):
        """A serializer may state a rule across its fields as JSON Schema
        (`openapi_request_rules`, e.g. "one of these must be given"): the
        service enforces it, the document says it."""
        schema = super()._map_basic_serializer(serializer, direction)
        for prop in schema.get("properties", {}).values():
            # drf-spectacular adds `oneOf: [rule, {maxLength: 0}]` to a blank-allowed text
            # with a pattern; when the rule itself admits "", "" would match both branches
            # (invalid for oneOf): keep the rule alone.
            one = prop.get("oneOf")
            if one and len(one) == 2 and one[1] == {"type": "string", "maxLength": 0}:
                inner = one[0]
                if (not inner.get("minLength") and "format" not in inner and "enum" not in inner
                        and re.search(inner.get("pattern", ""), "")):
                    del prop["oneOf"]
                    prop.update(inner)
        rules = getattr(serializer, "openapi_request_rules", None)
        if direction == "request" and rules:
            schema.update(copy.deepcopy(rules))
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction == "response":
            for code, value in self._error_responses().items():
                if code not in responses:
                    responses[code] = self._get_response_for_code(value.response, code) | {"description": value.description}
        return responses

    def get_filter_backends(self):
        # Every list-like action of an OrganisationViewSet (`list`, and nested ones
        # such as donors/{id}/donations) documents its filterset's parameters.
        list_actions = getattr(self.view, "list_actions", None)
        if callable(list_actions):
            if getattr(self.view, "action", None) in list_actions() and self.method.upper() == "GET":
                return getattr(self.view, "filter_backends", [])
            return []
        return super().get_filter_backends()

    def get_tags(self) -> list[str]:
        tags = getattr(self.view, "schema_tags", None)
        return list(tags) if tags else super().get_tags()


def preprocess_only_api(endpoints):
    return [e for e in endpoints if e[0].startswith("/api/v1/") and not e[0].startswith("/api/v1/openapi")]


def postprocess(result, generator, request, public):
    """The document's frame, parameters, headers and closed request bodies. Apps add
    their own parts in hooks listed after this one (the webhooks section); then
    `postprocess_describe` describes and exemplifies everything (settings'
    POSTPROCESSING_HOOKS gives the order)."""
    result["openapi"] = "3.1.0"
    result["servers"] = [{"url": "/", "description": "Current host"}]
    result["tags"] = TAGS
    result["security"] = [{"apiKey": []}]
    components = result.setdefault("components", {})
    components["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer pc_… (READ or WRITE key from /settings/api)."}
    }
    components["headers"] = copy.deepcopy(HEADERS)
    schemas = components.get("schemas", {})
    # Request bodies: an unknown field is 400 `invalid_request`, so none is allowed.
    request_components = set()
    for item in result["paths"].values():
        for op in item.values():
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
            if ref:
                request_components.add(ref.rsplit("/", 1)[-1])
    for name in sorted(request_components):
        _close_request_schema(schemas, name, set())
    if "ErrorEnvelope" in schemas:
        envelope = schemas.pop("ErrorEnvelope")
        envelope["example"] = {
            "error": {
                "type": "https://alltogether.giving/developer/api/errors/not_found",
                "code": "not_found",
                "message": "Donor not found",
                "request_id": "req_abc123",
                "doc_url": "https://alltogether.giving/developer/api/errors/not_found",
            }
        }
        components["schemas"] = {"ErrorEnvelope": envelope, **schemas}
    return result


def postprocess_describe(result, generator, request, public):
    """The last hook: every property described and every body and response given examples."""
    from together.api.examples import add_examples

    describe_properties(result["components"]["schemas"])
    add_examples(result)
    return result


def _close_request_schema(schemas: dict, name: str, seen: set) -> None:
    if name in seen or name not in schemas:
        return
    seen.add(name)
    schema = schemas[name]
    for variant in schema.get("oneOf", []):
        if "$ref" in variant:
            _close_request_schema(schemas, variant["$ref"].rsplit("/", 1)[-1], seen)
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
        # An empty body (`{}`) is 400 `invalid_request`: send at least one field.
        schema.setdefault("minProperties", 1)
    for prop in schema.get("properties", {}).values():
        for sub in (prop, prop.get("items", {})):
            if "$ref" in sub and sub["$ref"].rsplit("/", 1)[-1].endswith("Request"):
                _close_request_schema(schemas, sub["$ref"].rsplit("/", 1)[-1], seen)


# --- property descriptions -------------------------------------------------------------------
# Fields whose serializer gives no help_text get the meaning of their name here, so
# that no property of the document is left undescribed.

FIELD_GLOSSARY = {
    "id": "The object's id: opaque, stable, unique.",
    "object": "The kind of object, e.g. `donor`, `donation`.",
    "created_at": "When the object was created: ISO 8601 UTC with milliseconds and `Z`.",
    "updated_at": "When the object last changed: ISO 8601 UTC with milliseconds and `Z`.",
    "occurred_at": "When the event happened: ISO 8601 UTC with milliseconds and `Z`.",
    "data": "The objects of this page, or the payload.",
    "description": "Free text describing it.",
    "status": "The object's state.",
    "name": "Its name.",
    "label": "Your name for it, shown in lists.",
    "external_id": "Your system's id for it (free text, not checked for uniqueness).",
    "jurisdiction": "The jurisdiction (federal, a state or territory, or UNREGULATED).",
    "currency": "ISO 4217 currency of every amount: the organisation's (AUD).",
    "notes": "Internal notes.",
    "metadata": "Your own string values, up to 50 keys.",
    "url": "The URL.",
    "reason": "Why, in words.",
    "code": "The code.",
    "type": "The kind.",
    "email": "Email address.",
    "first_name": "Given name.",
    "last_name": "Family name.",
    "organisation_name": "Organisation name (for a donor that is an organisation, or the organisation's own name).",
    "phone": "Phone number as entered.",
    "address_line1": "Street address, first line.",
    "address_line2": "Street address, second line.",
    "suburb": "Suburb or town.",
    "state": "State or territory.",
    "postcode": "Postcode.",
    "country": "ISO 3166-1 alpha-2 country code.",
    "donor_type": "INDIVIDUAL or another kind of donor.",
    "donation_type": "MONETARY or IN_KIND.",
    "source": "Where the donation came from; MANUAL for gifts recorded through the API or the dashboard.",
    "payment_method": "How the money came (MONETARY only).",
    "reference": "A cheque number, bank or lodgement reference.",
    "in_kind_category": "What was given (IN_KIND only).",
    "in_kind_description": "What was given, in words (IN_KIND only).",
    "in_kind_valuation_method": "How the fair value was set (IN_KIND only).",
    "revenue_code": "The revenue code of the gift; it sets the jurisdiction.",
    "void_reason": "Why it was voided; null unless VOIDED.",
    "refund_reason": "Why it was refunded; null unless REFUNDED.",
    "is_active": "false once deactivated.",
    "is_sandbox": "Whether the organisation is a sandbox.",
    "scope": "READ or WRITE.",
    "amount_mode": "FIXED (amounts locked; the default), SUGGESTED (pre-filled, editable) or OPEN (the donor enters every amount).",
    "allocations": "In the order shown to donors on the giving form.",
    "enabled_events": "The event types sent to this endpoint, or `[\"*\"]` for all.",
    "attempts": "Every attempt, oldest first.",
    "error": "What went wrong on this attempt (connection, timeout, TLS), or null.",
    "last_error": "What went wrong on the last attempt, or null.",
    "succeeded": "Whether the receiver answered 2xx.",
    "latency_ms": "How long the receiver took to answer, in milliseconds.",
    "status_code": "The receiver's HTTP status, or null without an answer.",
    "last_status_code": "The receiver's HTTP status on the last attempt, or null.",
    "event_type": "The type of the event delivered.",
    "database": "`ok` or `unavailable`.",
    "redis": "`ok` or `unavailable`.",
    "key_name": "The key's name, as given at creation.",
    "organisation_slug": "The organisation's slug (`{slug}-sandbox` for a sandbox).",
    "invitee_email": "Where the invite was sent.",
    "invitee_org_name_hint": "The invitee organisation's name as the inviter gave it.",
    "invitee_message": "The inviter's note, shown in the email and on the invite page.",
    "recipient_org_name": "The recipient organisation's name.",
    "default_jurisdiction": "The jurisdiction of gifts without a revenue code.",
    "entity_type": "The organisation's kind of entity under electoral law.",
    "alert_level": "NONE, AMBER, RED or CRITICAL.",
    "alert_amber_percent": "Percentage of a cap at which a donor's alert turns AMBER.",
    "alert_red_percent": "Percentage of a cap at which a donor's alert turns RED.",
    "alert_critical_percent": "Percentage of a cap at which a donor's alert turns CRITICAL.",
    "election_type": "The kind of election.",
    "regime": "The rules in force (financial-year or calendar-year regime).",
    "period_kind": "FINANCIAL_YEAR or CALENDAR_YEAR.",
    "threshold_comparator": "Whether a total must be above, or at least, the threshold.",
    "above_threshold": "Whether the total passes the disclosure threshold.",
    "deadline_basis": "What the due date is counted from.",
    "from_jurisdiction": "The jurisdiction before.",
    "to_jurisdiction": "The jurisdiction after.",
    "as_of": "The date the position is computed for.",
    "crossed_on": "The date the threshold was crossed.",
    "lodged_reference": "The lodgement reference given when marked lodged.",
    "cancelled_reason": "Why it was cancelled, or null.",
    "attempt_number": "1 for the first attempt.",
    "attempt_count": "Attempts made so far.",
}

_PATTERNS = [
    (re.compile(r"^(\w+)_at$"), lambda m: f"When it was {m.group(1).replace('_', ' ')}: ISO 8601 UTC with milliseconds and `Z`; null until then."),
    (re.compile(r"^(\w+)_cents$"), lambda m: f"The {m.group(1).replace('_', ' ')}, in integer cents."),
    (re.compile(r"^(\w+)_id$"), lambda m: f"The id of the {m.group(1).replace('_', ' ')}."),
    (re.compile(r"^(\w+)_date$"), lambda m: f"The {m.group(1).replace('_', ' ')} date, YYYY-MM-DD."),
    (re.compile(r"^(\w+)_(count|affected|created|cancelled)$"), lambda m: f"Number of {m.group(1).replace('_', ' ')} {m.group(2) if m.group(2) != 'count' else ''}".rstrip() + "."),
    (re.compile(r"^(period|cap_period)_(start|end)$"), lambda m: f"The {m.group(2)} of the {m.group(1).replace('_', ' ')}, YYYY-MM-DD."),
    (re.compile(r"^(starts|ends)_at$"), lambda m: f"The date it {m.group(1)}."),
    (re.compile(r"^(\w+)_percent$"), lambda m: f"The {m.group(1).replace('_', ' ')}, as a percentage."),
]


# Where one property name means different things in different objects, the
# object's own wording wins: (pattern over the component's name, property) → text.
SCHEMA_FIELD_GLOSSARY = [
    (re.compile(r"Event$"), "data", "The object as it was when the event occurred (before deletion for `*.deleted`)."),
    (re.compile(r"^DonorCompliance$"), "data", "The donor's position in each jurisdiction where a rule applies."),
    (re.compile(r"^ErrorEnvelope$"), "error", "What went wrong: `type`, `code`, `message`, the `param` at fault, and `doc_url`."),
]


def describe(name: str, schema_name: str = "") -> str | None:
    for pattern, prop, text in SCHEMA_FIELD_GLOSSARY:
        if prop == name and pattern.search(schema_name):
            return text
    if name in FIELD_GLOSSARY:
        return FIELD_GLOSSARY[name]
    for pattern, make in _PATTERNS:
        match = pattern.match(name)
        if match:
            return make(match)
    return None


def describe_properties(schemas: dict) -> None:
    def walk(schema: dict, schema_name: str) -> None:
        for name, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                text = describe(name, schema_name)
                if text:
                    prop["description"] = text  # beside a $ref too: OpenAPI 3.1 allows the sibling
            walk(prop, schema_name)
            if isinstance(prop.get("items"), dict):
                walk(prop["items"], schema_name)
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key, []):
                walk(part, schema_name)

    for schema_name, schema in schemas.items():
        walk(schema, schema_name)

"""OpenAPI: our AutoSchema documents every operation's error responses, and the
post-processing hook fixes the document-level facts of the reference."""
from __future__ import annotations

from drf_spectacular.drainage import set_override
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, inline_serializer
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
]


class ErrorDetailSerializer(serializers.Serializer):
    type = serializers.URLField(help_text="Same as doc_url.")
    code = serializers.ChoiceField(choices=sorted(ERROR_CODES), help_text="Stable, machine-readable; branch on it.")
    message = serializers.CharField(help_text="For humans; wording may change.")
    param = serializers.CharField(required=False, help_text="The field or parameter at fault, e.g. `allocations[2].amount_cents`.")
    reason = serializers.CharField(required=False, help_text="Extra machine-readable detail for some business rules, e.g. `donor_cap_exceeded`.")
    remaining_cents = serializers.IntegerField(required=False, help_text="With reason `donor_cap_exceeded`: the room left under the cap.")
    request_id = serializers.CharField(help_text="`req_…`, equal to the x-request-id header.")
    doc_url = serializers.URLField()


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
        fields={"data": item_serializer(many=True), "has_more": serializers.BooleanField()},
    )
    set_override(envelope, "many", False)
    return envelope


class AutoSchema(SpectacularAutoSchema):
    def _required_scope(self):
        scope = getattr(self.view, "required_scope", "DEFAULT")
        if isinstance(scope, dict):
            scope = scope.get(self.method.upper(), "DEFAULT")
        return scope

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        # No key needed (e.g. health): say so, or the global `apiKey` requirement applies.
        if operation is not None and self._required_scope() is None:
            operation["security"] = []
        return operation

    def _error_responses(self) -> dict:
        method = self.method.upper()
        scope = self._required_scope()
        out = {
            "400": error("invalid_request or validation_failed: malformed request, unknown parameter, or a value not allowed (`param` names it)."),
            "404": error("not_found: no such record in this organisation."),
            "405": error("method_not_allowed"),
            "429": error("rate_limited: see Retry-After."),
            "500": error("internal_error"),
        }
        if scope is not None:
            out["401"] = error("unauthorized: missing, unknown or revoked API key.")
            out["403"] = error("forbidden: this key's scope does not allow the operation.")
        if method in ("POST", "PATCH", "DELETE"):
            out["409"] = error("conflict or idempotency_conflict.")
        return out

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
    result["openapi"] = "3.1.0"
    result["servers"] = [{"url": "/", "description": "Current host"}]
    result["tags"] = TAGS
    result["security"] = [{"apiKey": []}]
    components = result.setdefault("components", {})
    components["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer pc_… (READ or WRITE key from /settings/api)."}
    }
    schemas = components.get("schemas", {})
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

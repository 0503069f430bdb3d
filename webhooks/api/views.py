from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from together.api.docs import LIST_PARAMETERS
from together.api.renderers import iso_timestamp
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet
from webhooks import selectors, services
from webhooks.api.filters import EventFilterSet, WebhookDeliveryFilterSet, WebhookEndpointFilterSet
from webhooks.api.serializers import (
    EventSerializer, WebhookDeliverySerializer, WebhookEndpointCreateInput, WebhookEndpointRotatedSerializer,
    WebhookEndpointSerializer, WebhookEndpointUpdateInput, WebhookEndpointWithSecretSerializer,
)
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint
from webhooks.representations import (
    DELIVERY_FIELDS, ENDPOINT_FIELDS, EVENT_FIELDS, render_delivery, render_endpoint, render_event,
)

EventList = list_envelope("EventList", EventSerializer)
WebhookEndpointList = list_envelope("WebhookEndpointList", WebhookEndpointSerializer)
WebhookDeliveryList = list_envelope("WebhookDeliveryList", WebhookDeliverySerializer)

DELIVERY_SEMANTICS = (
    "Deliveries are at least once and unordered: dedupe on the `webhook-id` header (the delivery id, stable across "
    "retries). See /developer/webhooks."
)


class EmptyInput(serializers.Serializer):
    """No body, or `{}`."""


def render_delivery_rows(view: OrganisationViewSet, rows: list[dict]) -> list[dict]:
    attempts = selectors.delivery_attempts(organisation=view.request.organisation, delivery_ids=[r["id"] for r in rows])
    return [render_delivery(r, attempts.get(r["id"], [])) for r in rows]


@extend_schema_view(
    list=extend_schema(
        summary="List events", parameters=LIST_PARAMETERS, responses={200: EventList},
        description="Every event of the last 30 days, newest first: the same `type` and `data` as the webhooks, so an "
                    "integrator can catch up by polling. Filter by `type` and `created_at[gte|gt|lte|lt]`.",
    ),
    retrieve=extend_schema(summary="Retrieve an event", responses={200: EventSerializer}),
)
class EventViewSet(OrganisationViewSet):
    schema_tags = ["webhooks"]
    queryset = Event.objects.none()  # for the OpenAPI generator only; requests go through get_queryset()
    fields = EVENT_FIELDS
    filtersets = {"list": EventFilterSet}

    def get_base_queryset(self):
        return selectors.event_queryset(organisation=self.request.organisation)

    def render(self, row):
        return render_event(row)

    def object_label(self) -> str:
        return "Event"


@extend_schema_view(
    list=extend_schema(summary="List webhook endpoints", parameters=LIST_PARAMETERS, responses={200: WebhookEndpointList}),
    retrieve=extend_schema(summary="Retrieve a webhook endpoint", responses={200: WebhookEndpointSerializer}),
)
class WebhookEndpointViewSet(OrganisationViewSet):
    schema_tags = ["webhooks"]
    fields = ENDPOINT_FIELDS
    filtersets = {"list": WebhookEndpointFilterSet, "deliveries": WebhookDeliveryFilterSet}

    def get_base_queryset(self):
        return WebhookEndpoint.objects

    @property
    def queryset(self):
        """For the OpenAPI generator only (requests go through get_queryset()): the model
        each action lists, so that its filters are documented."""
        if getattr(self, "action", None) == "deliveries":
            return WebhookDelivery.objects.none()
        return WebhookEndpoint.objects.none()

    def render(self, row):
        return render_endpoint(row)

    @extend_schema(
        summary="Create a webhook endpoint", request=WebhookEndpointCreateInput,
        responses={201: WebhookEndpointWithSecretSerializer},
        description="WRITE key. The URL must be https and resolve to public addresses only (private, loopback and "
                    "link-local are refused, again at every delivery); redirects are not followed. The response carries "
                    "the signing `secret`, shown only this once. Sandbox endpoints receive sandbox events only. "
                    + DELIVERY_SEMANTICS,
    )
    def create(self, request):
        data = self.validate_input(WebhookEndpointCreateInput)
        created = services.webhook_endpoint_create(organisation=request.organisation, actor=request.actor, **data)
        body = self.render_rows([self.get_row(created.endpoint.id)])[0] | {"secret": created.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Update a webhook endpoint", request=WebhookEndpointUpdateInput,
                   responses={200: WebhookEndpointSerializer},
                   description="Change the URL, description or event types, or set `status` to DISABLED or back to "
                               "ENABLED (which also clears the failure streak).")
    def partial_update(self, request, pk=None):
        data = self.validate_input(WebhookEndpointUpdateInput, partial=True)
        services.webhook_endpoint_update(organisation=request.organisation, actor=request.actor, endpoint_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Delete a webhook endpoint", responses={204: None},
                   description="Stops deliveries at once and deletes the endpoint's delivery log.")
    def destroy(self, request, pk=None):
        services.webhook_endpoint_delete(organisation=request.organisation, actor=request.actor, endpoint_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Rotate the signing secret", request=None, responses={200: WebhookEndpointRotatedSerializer},
        description="Returns the new secret, shown only this once. For the next 24 hours every delivery carries two "
                    "signatures in `webhook-signature` (`v1,<new> v1,<old>`), so receivers can switch without losing events.",
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        self.validate_input(EmptyInput, require_body=False)
        rotated = services.webhook_endpoint_rotate_secret(organisation=request.organisation, actor=request.actor, endpoint_id=pk)
        body = self.render_rows([self.get_row(pk)])[0] | {
            "secret": rotated.secret,
            "previous_secret_expires_at": iso_timestamp(rotated.endpoint.previous_secret_expires_at),
        }
        return Response(body)

    @extend_schema(
        summary="Send a test event", request=None,
        responses={202: OpenApiResponse(WebhookDeliverySerializer, description="The test delivery, queued.")},
        description="Queues a `webhook_endpoint.tested` event to this endpoint only, signed and retried like any other. "
                    "Follow it at GET /api/v1/webhook-deliveries/{id}. 409 `conflict` when the endpoint is disabled.",
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        self.validate_input(EmptyInput, require_body=False)
        delivery = services.webhook_endpoint_test(organisation=request.organisation, actor=request.actor, endpoint_id=pk)
        return WebhookDeliveryViewSet.respond_delivery(self, delivery.id, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="List an endpoint's deliveries", parameters=LIST_PARAMETERS, responses={200: WebhookDeliveryList},
        description="Every delivery to this endpoint, newest first, each with all its attempts (status code, latency, "
                    "response excerpt, error, next attempt). Filter by `status`, `event_type`, `event_id`, `created_at[…]`.",
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        self.get_row(pk)
        queryset = selectors.delivery_queryset(organisation=request.organisation).filter(endpoint_id=pk)
        queryset = self.filter_queryset(queryset)
        page = self.pagination.paginate(queryset, request.query_params, values=DELIVERY_FIELDS)
        return Response({"data": render_delivery_rows(self, page.rows), "has_more": page.has_more})


@extend_schema_view(
    retrieve=extend_schema(summary="Retrieve a webhook delivery", responses={200: WebhookDeliverySerializer},
                           description="A delivery with every attempt. " + DELIVERY_SEMANTICS),
)
class WebhookDeliveryViewSet(OrganisationViewSet):
    schema_tags = ["webhooks"]
    queryset = WebhookDelivery.objects.none()  # for the OpenAPI generator only
    fields = DELIVERY_FIELDS

    def get_base_queryset(self):
        return WebhookDelivery.objects

    def render_rows(self, rows):
        return render_delivery_rows(self, rows)

    def object_label(self) -> str:
        return "Webhook delivery"

    @staticmethod
    def respond_delivery(view: OrganisationViewSet, delivery_id: str, status_code: int) -> Response:
        row = selectors.delivery_queryset(organisation=view.request.organisation).filter(pk=delivery_id).values(*DELIVERY_FIELDS).first()
        return Response(render_delivery_rows(view, [row])[0], status=status_code)

    @extend_schema(
        summary="Retry a webhook delivery", request=None,
        responses={202: OpenApiResponse(WebhookDeliverySerializer, description="The delivery, queued for one more attempt.")},
        description="Sends the delivery again now, with the same `webhook-id`, whatever its status (a successful one is "
                    "replayed). One more attempt; if it fails, the usual schedule goes on from the attempt count (a delivery past the whole schedule stays FAILED). 409 `conflict` when the "
                    "endpoint is disabled or the delivery is being sent at this moment.",
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        self.validate_input(EmptyInput, require_body=False)
        services.webhook_delivery_retry(organisation=request.organisation, actor=request.actor, delivery_id=pk)
        return self.respond_object(pk, status.HTTP_202_ACCEPTED)

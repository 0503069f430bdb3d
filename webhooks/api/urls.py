from django.urls import re_path
from rest_framework.routers import SimpleRouter

from webhooks.api.views import EventViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("events", EventViewSet, basename="event")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")

# Deliveries are listed under their endpoint (webhook-endpoints/{id}/deliveries):
# one delivery and its retry are routed here, without the base class's list.
delivery = {"basename": "webhook-delivery", "detail": True}
urlpatterns = router.urls + [
    re_path(r"^webhook-deliveries/(?P<pk>[^/]+)$", WebhookDeliveryViewSet.as_view({"get": "retrieve"}, **delivery),
            name="webhook-delivery-detail"),
    re_path(r"^webhook-deliveries/(?P<pk>[^/]+)/retry$", WebhookDeliveryViewSet.as_view({"post": "retry"}, **delivery),
            name="webhook-delivery-retry"),
]

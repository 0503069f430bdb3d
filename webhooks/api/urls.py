from rest_framework.routers import SimpleRouter

from webhooks.api.views import EventViewSet, WebhookDeliveryViewSet, WebhookEndpointViewSet

router = SimpleRouter(trailing_slash=False)
router.register("events", EventViewSet, basename="event")
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = router.urls

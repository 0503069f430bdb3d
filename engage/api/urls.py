from rest_framework.routers import SimpleRouter

from engage.api.views import CheckoutLinkViewSet, FormViewSet

router = SimpleRouter(trailing_slash=False)
router.register("forms", FormViewSet, basename="form")
router.register("checkout-links", CheckoutLinkViewSet, basename="checkout-link")

urlpatterns = router.urls

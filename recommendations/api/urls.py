from rest_framework.routers import SimpleRouter

from recommendations.api.views import IntroductionViewSet, RecipientAccountViewSet, RecommendationSetViewSet

router = SimpleRouter(trailing_slash=False)
router.register("recipient-accounts", RecipientAccountViewSet, basename="recipient-account")
router.register("introductions", IntroductionViewSet, basename="introduction")
router.register("recommendation-sets", RecommendationSetViewSet, basename="recommendation-set")

urlpatterns = router.urls

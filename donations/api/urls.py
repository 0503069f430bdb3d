from rest_framework.routers import SimpleRouter

from donations.api.views import CampaignViewSet, DonationViewSet, DonorViewSet

router = SimpleRouter(trailing_slash=False)
router.register("donors", DonorViewSet, basename="donor")
router.register("donations", DonationViewSet, basename="donation")
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = router.urls

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from donations.api.custom_fields import CustomFieldViewSet
from donations.api.tags import DonorTagViewSet, TagViewSet
from donations.api.views import CampaignViewSet, DonationViewSet, DonorViewSet

router = SimpleRouter(trailing_slash=False)
router.register("donors", DonorViewSet, basename="donor")
router.register("donations", DonationViewSet, basename="donation")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("tags", TagViewSet, basename="tag")
router.register("custom-fields", CustomFieldViewSet, basename="custom-field")

urlpatterns = router.urls + [
    re_path(r"^donors/(?P<pk>[^/]+)/tags$", DonorTagViewSet.as_view({"post": "add"}), name="donor-tags"),
    re_path(r"^donors/(?P<pk>[^/]+)/tags/(?P<name>[^/]+)$", DonorTagViewSet.as_view({"delete": "remove"}), name="donor-tag"),
]

from django.urls import path
from rest_framework.routers import SimpleRouter

from compliance.api.views import (
    ComplianceBreachViewSet, ComplianceSettingsView, DisclosureObligationViewSet, DonorComplianceView, ElectionPeriodViewSet,
    RevenueCodeViewSet,
)

router = SimpleRouter(trailing_slash=False)
router.register("revenue-codes", RevenueCodeViewSet, basename="revenue-code")
router.register("disclosure-obligations", DisclosureObligationViewSet, basename="disclosure-obligation")
router.register("compliance-breaches", ComplianceBreachViewSet, basename="compliance-breach")
router.register("election-periods", ElectionPeriodViewSet, basename="election-period")

urlpatterns = [
    path("compliance-settings", ComplianceSettingsView.as_view(), name="api-compliance-settings"),
    path("donors/<str:pk>/compliance", DonorComplianceView.as_view(), name="api-donor-compliance"),
    *router.urls,
]

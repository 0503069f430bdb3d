from django.urls import path

from organisations.api.views import HealthView, WhoamiView

urlpatterns = [
    path("whoami", WhoamiView.as_view(), name="api-whoami"),
    path("health", HealthView.as_view(), name="api-health"),
]

from django.conf import settings
from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from together import developer
from together.api.views import api_not_found
from webhooks.dashboard import WebhooksView

api_v1 = [
    path("", include("organisations.api.urls")),
    path("", include("donations.api.urls")),
    path("", include("compliance.api.urls")),
    path("", include("recommendations.api.urls")),
    path("", include("engage.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("reports.api.urls")),
    path("", include("imports.api.urls")),
    path("", include("receipts.api.urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    re_path(r"^api/", api_not_found),
    # The split view serves Swagger UI's start-up script from a URL of its own (no inline script: CSP).
    path("developer/api", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="developer-api"),
    path("developer/api/errors", developer.errors_index, name="developer-errors"),
    path("developer/api/errors/<str:code>", developer.error_detail, name="developer-error"),
    path("developer/webhooks", include("webhooks.urls")),
    path("admin/", admin.site.urls),
    path("settings/webhooks", WebhooksView.as_view(), name="settings-webhooks"),
    path("", include("organisations.urls")),
    path("", include("donations.urls")),
    path("", include("compliance.urls")),
    path("", include("recommendations.urls")),
    path("", include("engage.urls")),
    path("", include("reports.urls")),
    path("", include("imports.urls")),
    path("", include("payments.urls")),
    path("", include("receipts.urls")),
]

if settings.BENCH_ENDPOINTS:
    def bench_empty(request):
        return JsonResponse({})

    urlpatterns.append(path("_bench/empty", bench_empty))

    from django.views.decorators.csrf import csrf_exempt

    @csrf_exempt
    def bench_post(request):
        """The bare view of POST rows (bench/stripe_events.py): reads the body, answers {}."""
        request.body  # noqa: B018 - read it, as a real handler does
        return JsonResponse({})

    urlpatterns.append(path("_bench/post", bench_post))

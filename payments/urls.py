from django.urls import include, path

from payments import views

urlpatterns = [
    path("webhooks/stripe", views.stripe_webhook, name="stripe-webhook"),
    path("pay/<str:payment_id>", views.PayStatusView.as_view(), name="pay-status"),
    path("", include("payments.public_urls")),  # /donate/<slug>, /c/<code> (payments/public.py)
]

# The dashboard's Recurring pages (payments/views.py). `/recurring/<id>` is the address
# the billing engine's alert emails link to. The list is `/recurring`, a plain path like
# every other route (no optional-slash regex: the route sweeps read each route's path
# from the URL conf, and `^recurring/?$` read as "/recurring/?", i.e. a query string).
urlpatterns += [
    path("recurring", views.RecurringListView.as_view(), name="recurring"),
    path("recurring/donor/<str:donor_id>/fragment", views.DonorPlansFragmentView.as_view(), name="recurring-donor-fragment"),
    path("recurring/<str:pk>", views.RecurringDetailView.as_view(), name="recurring-detail"),
]

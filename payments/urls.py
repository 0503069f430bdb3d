from django.urls import include, path, re_path

from payments import views

urlpatterns = [
    path("webhooks/stripe", views.stripe_webhook, name="stripe-webhook"),
    path("pay/<str:payment_id>", views.PayStatusView.as_view(), name="pay-status"),
    path("", include("payments.public_urls")),  # /donate/<slug>, /c/<code> (payments/public.py)
]

# The dashboard's Recurring pages (payments/views.py). `/recurring/<id>` is the address
# the billing engine's alert emails link to.
urlpatterns += [
    re_path(r"^recurring/?$", views.RecurringListView.as_view(), name="recurring"),
    path("recurring/donor/<str:donor_id>/fragment", views.DonorPlansFragmentView.as_view(), name="recurring-donor-fragment"),
    path("recurring/<str:pk>", views.RecurringDetailView.as_view(), name="recurring-detail"),
]

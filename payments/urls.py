from django.urls import include, path

from payments import views

urlpatterns = [
    path("webhooks/stripe", views.stripe_webhook, name="stripe-webhook"),
    path("pay/<str:payment_id>", views.PayStatusView.as_view(), name="pay-status"),
    path("", include("payments.public_urls")),  # /donate/<slug>, /c/<code> (payments/public.py)
]

"""The public payment pages of donation forms and checkout links (payments/public.py)."""
from django.urls import path

from payments import public

urlpatterns = [
    path("donate/<str:slug>", public.DonateView.as_view(), name="donate"),
    path("donate/<str:slug>/intent", public.DonateIntentView.as_view(), name="donate-intent"),
    path("c/<str:code>", public.CheckoutView.as_view(), name="checkout"),
    path("c/<str:code>/intent", public.CheckoutIntentView.as_view(), name="checkout-intent"),
]

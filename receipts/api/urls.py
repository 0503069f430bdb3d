from django.urls import path

from receipts.api.views import DonationReceiptResendView, DonationReceiptView

urlpatterns = [
    path("donations/<str:donation_id>/receipt", DonationReceiptView.as_view(), name="api-donation-receipt"),
    path("donations/<str:donation_id>/receipt/resend", DonationReceiptResendView.as_view(), name="api-donation-receipt-resend"),
]

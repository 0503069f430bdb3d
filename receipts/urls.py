from django.urls import path

from receipts import views

urlpatterns = [
    path("settings/receipts", views.ReceiptSettingsView.as_view(), name="settings-receipts"),
    path("finance/receipts", views.ReceiptsFinanceView.as_view(), name="receipts-finance"),
    path("finance/receipts/runs/<str:run_id>", views.ReceiptRunFragmentView.as_view(), name="receipts-run"),
    path("receipts/<str:receipt_id>.pdf", views.ReceiptDownloadView.as_view(), name="receipt-pdf"),
    path("receipts/donation/<str:donation_id>", views.DonationReceiptsFragmentView.as_view(), name="receipts-donation-fragment"),
    path("receipts/donor/<str:donor_id>", views.DonorReceiptsFragmentView.as_view(), name="receipts-donor-fragment"),
    path("receipts/donor/<str:donor_id>/statement", views.DonorStatementView.as_view(), name="receipts-statement"),
]

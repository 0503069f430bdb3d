from django.urls import path

from reports import views

urlpatterns = [
    path("reports/", views.ReportsView.as_view(), name="reports"),
    path("donations/export.csv", views.DonationListExportView.as_view(), name="donations-export"),
    path("donors/export.csv", views.DonorListExportView.as_view(), name="donors-export"),
    path("reports/jobs/<str:job_id>", views.ExportJobStatusView.as_view(), name="report-job-status"),
    path("reports/jobs/<str:job_id>/download", views.ExportJobDownloadView.as_view(), name="report-job-download"),
]

from django.urls import path

from reports.api.views import REPORT_VIEWS, UnknownReportView

urlpatterns = [
    *[path(f"reports/{name}", view.as_view(), name=f"api-report-{name}") for name, view in REPORT_VIEWS.items()],
    path("reports/<str:name>", UnknownReportView.as_view(), name="api-report-unknown"),
]

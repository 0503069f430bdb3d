from django.urls import path

from reports.api.views import REPORT_VIEWS

# One route per report (each documented with its columns); any other name falls
# through to the API's catch-all: 404 `not_found` in the envelope.
urlpatterns = [path(f"reports/{name}", view.as_view(), name=f"api-report-{name}") for name, view in REPORT_VIEWS.items()]

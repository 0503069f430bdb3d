"""The dashboard's Reports page (period picker, background jobs with progress)
and the HTTP shapes every caller of `reports.services.report_export` shares."""
from __future__ import annotations

from django.contrib import messages
from django.db.models import Max, Min
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views import View

from donations.models import Donation
from organisations.session import DashboardMixin
from reports.exporters import REGISTRY
from reports.forms import ReportForm
from reports.models import ExportJob, ExportStatus
from reports.services import Export, export_job_file, report_export, report_spec
from together.dashboard import list_query
from together.exceptions import ApplicationError


def export_response(export: Export):
    """A streamed CSV, a built XLSX, as an attachment named after organisation,
    report and period."""
    if export.chunks is not None:
        response = StreamingHttpResponse(export.chunks, content_type=export.content_type)
    else:
        response = FileResponse(export.file, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.file_name)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def job_payload(job: ExportJob, download_url: str) -> dict:
    return {
        "id": job.id, "report": job.report, "format": job.format, "status": job.status, "progress": job.progress,
        "rows_done": job.rows_done, "rows_total": job.rows_total, "file_name": job.file_name,
        "download_url": download_url if job.status == ExportStatus.COMPLETED else None, "error": job.error or None,
    }


class ReportsView(DashboardMixin, View):
    """GET: the page. POST: run the chosen report (any role may export: it is a read)."""

    write_role = "VIEWER"
    template_name = "reports/reports.html"

    def jobs(self, request):
        return self.scoped(ExportJob).order_by("-created_at", "-id")[:10]

    def page(self, request, form, status=200, error=None, job=None):
        return render(request, self.template_name, {
            "form": form, "reports": REGISTRY.values(), "jobs": self.jobs(request), "error": error, "new_job": job,
            "nav": "reports", "page_title": "Reports",
        }, status=status)

    def get(self, request):
        return self.page(request, ReportForm())

    def post(self, request):
        form = ReportForm(request.POST)
        if not form.is_valid():
            return self.page(request, form, status=400)
        try:
            spec = report_spec(organisation=request.organisation, name=form.cleaned_data["report"], data=form.report_data())
            export = report_export(spec=spec, fmt=form.cleaned_data["format"], actor=request.actor)
        except ApplicationError as exc:
            return self.page(request, form, status=400, error=exc.message)
        if export.job is not None:
            return self.page(request, ReportForm(initial=form.cleaned_data), status=202, job=export.job)
        return export_response(export)


class DonationListExportView(DashboardMixin, View):
    """The donations list as it is filtered, as CSV: the list's own filters (the
    DonationFilterSet the list and the API share) given to the Donations report,
    so the file has the finance export's columns and is streamed by its writer.
    The period is the list's gift-date range, else every gift's."""

    def get(self, request):
        exporter = REGISTRY["donations"]
        data = {k: v for k, v in request.GET.items() if v != "" and exporter.accepts_filter(k)}
        bounds = self.scoped(Donation).aggregate(first=Min("donation_date"), last=Max("donation_date"))
        today = timezone.localdate()
        data["from"] = data.get("donation_date[gte]") or (bounds["first"] or today).isoformat()
        data["to"] = data.get("donation_date[lte]") or (bounds["last"] or today).isoformat()
        try:
            spec = report_spec(organisation=request.organisation, name=exporter.name, data=data)
            return export_response(report_export(spec=spec, fmt="csv", actor=request.actor))
        except ApplicationError as exc:
            messages.error(request, f"The CSV was not made: {exc.message}")
            return redirect(f"{reverse('donations')}?{list_query(request)}")


class DonorListExportView(DashboardMixin, View):
    """The donors list as it is filtered, as CSV: the list's filters (DonorFilterSet) given to the
    Donors report, with this financial year's giving (the report's default period)."""

    def get(self, request):
        exporter = REGISTRY["donors"]
        data = {k: v for k, v in request.GET.items() if v != "" and exporter.accepts_filter(k)}
        try:
            spec = report_spec(organisation=request.organisation, name=exporter.name, data=data)
            return export_response(report_export(spec=spec, fmt="csv", actor=request.actor))
        except ApplicationError as exc:
            messages.error(request, f"The CSV was not made: {exc.message}")
            return redirect(f"{reverse('donors')}?{list_query(request)}")


class ExportJobStatusView(DashboardMixin, View):
    def get(self, request, job_id):
        job = self.scoped(ExportJob).filter(pk=job_id).first()
        if job is None:
            raise Http404("No such export.")
        return JsonResponse(job_payload(job, reverse("report-job-download", args=[job.id])))


class ExportJobDownloadView(DashboardMixin, View):
    def get(self, request, job_id):
        job = self.scoped(ExportJob).filter(pk=job_id).first()
        if job is None:
            raise Http404("No such export.")
        try:
            path = export_job_file(job=job)
        except ApplicationError as exc:
            raise Http404(exc.message) from None
        return FileResponse(open(path, "rb"), as_attachment=True, filename=job.file_name)

"""The admin's Reports page (Reports → Export jobs → "Run a report") and the
export jobs list, tenant-scoped like every admin list."""
from __future__ import annotations

from django.contrib import admin
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.html import format_html

from organisations.models import Organisation
from reports.exporters import REGISTRY
from reports.forms import ReportForm
from reports.models import ExportJob, ExportStatus
from reports.services import export_job_file, report_export, report_spec, xlsx_inline_max_rows
from reports.views import export_response, job_payload
from organisations.admin_tenancy import TenantAdminMixin, may, scope
from together.exceptions import ApplicationError


@admin.register(ExportJob)
class ExportJobAdmin(TenantAdminMixin, admin.ModelAdmin):
    object_kind = "records"
    list_display = ["created_at", "report", "format", "organisation", "status", "progress_bar", "rows_total", "download"]
    list_filter = ["status", "report", "format", "organisation"]
    search_fields = ["id", "file_name"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]
    list_select_related = ["organisation"]
    change_list_template = "admin/reports/exportjob_change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return format_html('<progress max="100" value="{}">{}%</progress> {}%', obj.progress, obj.progress, obj.progress)

    @admin.display(description="file")
    def download(self, obj):
        if obj.status != ExportStatus.COMPLETED:
            return obj.error[:80] if obj.status == ExportStatus.FAILED else "…"
        return format_html('<a href="{}">{}</a>', reverse("admin:reports_exportjob_download", args=[obj.pk]), obj.file_name)

    def get_urls(self):
        urls = [
            path("run/", self.admin_site.admin_view(self.run_view), name="reports_run"),
            path("<str:job_id>/status/", self.admin_site.admin_view(self.status_view), name="reports_exportjob_status"),
            path("<str:job_id>/download/", self.admin_site.admin_view(self.download_view), name="reports_exportjob_download"),
        ]
        return urls + super().get_urls()

    # -- the Reports page
    def run_view(self, request):
        if not self.has_view_permission(request):
            raise Http404
        organisations = scope(Organisation.objects.all(), request).order_by("name")
        form = ReportForm(request.POST or None, organisations=organisations)
        error, job, status = None, None, 200
        if request.method == "POST":
            if form.is_valid():
                organisation = form.cleaned_data["organisation"]
                try:
                    if not may(request, organisation.id):
                        raise Http404
                    spec = report_spec(organisation=organisation, name=form.cleaned_data["report"], data=form.report_data())
                    export = report_export(spec=spec, fmt=form.cleaned_data["format"],
                                           actor=request.actor)
                    if export.job is None:
                        return export_response(export)
                    job, status = export.job, 202
                except ApplicationError as exc:
                    error, status = exc.message, 400
            else:
                status = 400
        jobs = self.get_queryset(request).order_by("-created_at", "-id")[:10]
        context = {
            **self.admin_site.each_context(request), "title": "Reports", "form": form, "error": error, "new_job": job,
            "jobs": jobs, "reports": REGISTRY.values(), "opts": self.model._meta, "xlsx_limit": f"{xlsx_inline_max_rows():,}",
        }
        return render(request, "admin/reports/run.html", context, status=status)

    def _job(self, request, job_id):
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404("No such export.")
        return job

    def status_view(self, request, job_id):
        job = self._job(request, job_id)
        return JsonResponse(job_payload(job, reverse("admin:reports_exportjob_download", args=[job.pk])))

    def download_view(self, request, job_id):
        job = self._job(request, job_id)
        try:
            file_path = export_job_file(job=job)
        except ApplicationError as exc:
            raise Http404(exc.message) from None
        return FileResponse(open(file_path, "rb"), as_attachment=True, filename=job.file_name)

"""Donors → Import: upload, map columns, see the dry run, commit and watch its progress."""
from __future__ import annotations

from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.views import View

from imports import services
from imports.forms import MappingForm, UploadForm
from imports.mapping import FIELDS
from imports.models import Import, Outcome
from organisations.session import DashboardMixin
from together.dashboard import add_service_error
from together.exceptions import ApplicationError


class ImportsView(DashboardMixin, View):
    required_role = "EDITOR"
    write_role = "EDITOR"

    def page(self, request, form, status=200):
        jobs = self.scoped(Import).order_by("-created_at", "-id")[:10]
        return render(request, "imports/imports.html", {"form": form, "jobs": jobs, "nav": "imports", "page_title": "Import donors and gifts"},
                      status=status)

    def get(self, request):
        return self.page(request, UploadForm())

    def post(self, request):
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.page(request, form, status=400)
        upload = form.cleaned_data["file"]
        try:
            job = services.import_create(organisation=request.organisation, actor=request.actor, file=upload, file_name=upload.name)
        except ApplicationError as exc:
            add_service_error(form, exc)
            return self.page(request, form, status=400)
        return redirect("import-detail", import_id=job.id)


class ImportDetailView(DashboardMixin, View):
    required_role = "EDITOR"
    write_role = "EDITOR"

    def context(self, request, job, mapping_form=None, error=None):
        outcome = request.GET.get("outcome") or ""
        rows = services.import_rows(job=job, outcome=outcome or None, limit=100)
        return {"job": job, "mapping_form": mapping_form or MappingForm(headers=job.headers, mapping=job.mapping, organisation=request.organisation),
                "rows": rows, "outcome": outcome, "outcomes": Outcome.values, "error": error, "fields": FIELDS,
                "nav": "imports", "page_title": f"Import {job.file_name}"}

    def get(self, request, import_id):
        job = self.get_scoped_or_404(Import, import_id)
        template = "imports/_status.html" if request.headers.get("HX-Request") else "imports/detail.html"
        return render(request, template, self.context(request, job))

    def post(self, request, import_id):
        job = self.get_scoped_or_404(Import, import_id)
        try:
            if request.POST.get("action") == "commit":
                services.import_commit(organisation=request.organisation, actor=request.actor, import_id=job.id)
            else:
                form = MappingForm(request.POST, headers=job.headers, mapping=job.mapping, organisation=request.organisation)
                if not form.is_valid():
                    return render(request, "imports/detail.html", self.context(request, job, form), status=400)
                services.import_remap(organisation=request.organisation, actor=request.actor, import_id=job.id,
                                      mapping=form.mapping())
        except ApplicationError as exc:
            job.refresh_from_db()
            return render(request, "imports/detail.html", self.context(request, job, error=exc.message), status=400)
        return redirect("import-detail", import_id=job.id)


class ImportResultView(DashboardMixin, View):
    required_role = "EDITOR"

    def get(self, request, import_id):
        job = self.get_scoped_or_404(Import, import_id)
        if job.status in ("ANALYSING", "FAILED"):
            raise Http404("No result yet.")
        response = StreamingHttpResponse(services.import_result_chunks(job=job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, services.import_result_file_name(job))
        return response

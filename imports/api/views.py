"""/api/v1/imports: upload a file (multipart), poll its dry run, commit, fetch the result CSV (WRITE key)."""
from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from imports import services
from imports.models import Import
from together.api.parsers import StrictJSONParser
from together.api.renderers import iso_timestamp
from together.api.views import OrganisationViewSet
from together.exceptions import InvalidRequest

FIELDS = ("id", "file_name", "file_size", "file_format", "encoding", "delimiter", "headers", "mapping", "mapping_source",
          "notes", "kind", "status", "rows_total", "rows_done", "plan_counts", "result_counts", "error", "created_at",
          "completed_at")


def render_import(row: dict) -> dict:
    done = row["status"] == "COMPLETED"
    total = row["rows_total"] or 0
    return {
        "id": row["id"], "object": "import", "file_name": row["file_name"], "file_size": row["file_size"],
        "file_format": row["file_format"], "encoding": row["encoding"] or None, "delimiter": row["delimiter"] or None,
        "headers": row["headers"], "mapping": row["mapping"], "mapping_source": row["mapping_source"], "notes": row["notes"],
        "kind": row["kind"] or None, "status": row["status"], "rows_total": total, "rows_done": row["rows_done"],
        "progress": 100 if done else (min(99, row["rows_done"] * 100 // total) if total else 0),
        "plan_counts": row["plan_counts"], "result_counts": row["result_counts"] or None, "error": row["error"] or None,
        "created_at": iso_timestamp(row["created_at"]), "completed_at": iso_timestamp(row["completed_at"]) if row["completed_at"] else None,
    }


class ImportSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    file_name = serializers.CharField()
    status = serializers.ChoiceField(choices=["ANALYSING", "READY", "COMMITTING", "COMPLETED", "FAILED"])
    rows_total = serializers.IntegerField()
    rows_done = serializers.IntegerField()
    progress = serializers.IntegerField()
    headers = serializers.ListField(child=serializers.CharField())
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True))
    plan_counts = serializers.DictField(child=serializers.IntegerField())
    result_counts = serializers.DictField(child=serializers.IntegerField(), allow_null=True)
    error = serializers.CharField(allow_null=True)


class ImportUploadInput(serializers.Serializer):
    file = serializers.FileField(help_text="CSV or XLSX, at most 50 MB; one header row.")
    mapping = serializers.CharField(required=False, help_text="JSON object of column header to field; default: the "
                                    "organisation's remembered mapping for these headers, else one suggested from their names.")


@extend_schema_view(retrieve=extend_schema(summary="Retrieve an import (poll its dry run and commit)", responses={200: ImportSerializer}))
class ImportViewSet(OrganisationViewSet):
    schema_tags = ["imports"]
    queryset = Import.objects.none()
    required_scope = "WRITE"
    fields = FIELDS
    http_method_names = ["get", "post"]

    def get_base_queryset(self):
        return Import.objects

    def get_parsers(self):
        if getattr(self, "action", None) == "create" or (self.request is not None and self.request.method == "POST"
                                                            and self.request.path.rstrip("/").endswith("/imports")):
            return [MultiPartParser()]
        return [StrictJSONParser()]

    def check_request_shape(self, request):
        if self.action == "create":
            content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if content_type != "multipart/form-data":
                raise InvalidRequest("Upload the file as multipart/form-data with a `file` part.", param="Content-Type")
            return
        super().check_request_shape(request)

    def render(self, row):
        return render_import(row)

    def object_label(self) -> str:
        return "Import"

    @extend_schema(summary="Upload a file to import", request={"multipart/form-data": ImportUploadInput},
                   responses={201: ImportSerializer})
    def create(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidRequest("Send the file in a multipart part named `file`.", param="file")
        unknown = set(request.data.keys()) - {"file", "mapping"}
        if unknown:
            raise InvalidRequest(f"Unknown field '{sorted(unknown)[0]}'.", param=sorted(unknown)[0])
        mapping = None
        if request.data.get("mapping"):
            try:
                mapping = json.loads(request.data["mapping"])
            except ValueError:
                raise InvalidRequest("mapping must be a JSON object of column header to field.", param="mapping") from None
        job = services.import_create(organisation=request.organisation, actor=request.actor, file=upload,
                                     file_name=upload.name, mapping=mapping)
        return self.respond_object(job.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Commit an import (a READY dry run) as a background job", request=None,
                   responses={202: ImportSerializer})
    @action(detail=True, methods=["post"])
    def commit(self, request, pk=None):
        self.get_row(pk)
        job = services.import_commit(organisation=request.organisation, actor=request.actor, import_id=pk)
        return self.respond_object(job.id, status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The result CSV: input rows with outcome and ids", responses={
        (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="The rows with their outcomes.")})
    @action(detail=True, methods=["get"])
    def result(self, request, pk=None):
        job = services.import_get(organisation=request.organisation, import_id=pk)
        if job.status in ("ANALYSING", "FAILED"):
            raise InvalidRequest(f"This import is {job.status}: it has no result yet.", param="status")
        response = StreamingHttpResponse(services.import_result_chunks(job=job), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = content_disposition_header(True, services.import_result_file_name(job))
        response["Cache-Control"] = "no-store"
        return response

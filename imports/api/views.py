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
from together.api.docs import LIST_PARAMETERS
from together.api.parsers import StrictJSONParser
from together.api.renderers import iso_timestamp
from together.api.schema import list_envelope
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


OUTCOME_COUNTS = serializers.DictField(child=serializers.IntegerField(), help_text=(
    "Rows by outcome (CREATE_DONOR, MATCH_DONOR, CREATE_GIFT, DUPLICATE, REFUSED_CAP, INVALID: each row's final "
    "outcome) and, prefixed `donor:`, the donor outcome of gift rows."))


class ImportSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The import's id.")
    object = serializers.ChoiceField(choices=["import"], help_text="Always `import`.")
    file_name = serializers.CharField(help_text="The uploaded file's name.")
    file_size = serializers.IntegerField(help_text="Bytes.")
    file_format = serializers.ChoiceField(choices=["csv", "xlsx"], help_text="`csv` or `xlsx`.")
    encoding = serializers.CharField(allow_null=True, help_text="How a CSV was decoded: utf-8-sig, cp1252, latin-1 or utf-16.")
    delimiter = serializers.CharField(allow_null=True, help_text="A CSV's column separator, as sniffed.")
    headers = serializers.ListField(child=serializers.CharField(), help_text="The file's column headers, in order.")
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True), help_text=(
        "Column header → field (`first_name`, `email`, `amount`, `donation_date`, `gift_external_id`, …; empty: ignored)."))
    mapping_source = serializers.ChoiceField(choices=["suggested", "remembered", "chosen"], help_text=(
        "Where the mapping came from: suggested from the header names, remembered from this organisation's last "
        "committed file with these headers, or chosen in the upload."))
    notes = serializers.ListField(child=serializers.CharField(), help_text="What was done to read the file (encoding, separator).")
    kind = serializers.ChoiceField(choices=["donors", "gifts"], allow_null=True, help_text="`gifts` when an amount column is mapped.")
    status = serializers.ChoiceField(choices=["ANALYSING", "READY", "COMMITTING", "COMPLETED", "FAILED"], help_text=(
        "ANALYSING: the dry run is running; READY: dry run done, nothing stored; COMMITTING: the job writes it; "
        "COMPLETED; FAILED (see `error`)."))
    rows_total = serializers.IntegerField(help_text="Data rows in the file (blank lines skipped).")
    rows_done = serializers.IntegerField(help_text="Rows the commit has written so far.")
    progress = serializers.IntegerField(help_text="Whole percent of the commit, 0-100.")
    plan_counts = OUTCOME_COUNTS
    result_counts = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                          help_text="The commit's counts, as `plan_counts`; null before it completes.")
    error = serializers.CharField(allow_null=True, help_text="Why the mapping cannot be used, or why the import failed.")
    created_at = serializers.DateTimeField(help_text="When the file was uploaded.")
    completed_at = serializers.DateTimeField(allow_null=True, help_text="When the commit completed.")


UPLOAD_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV or XLSX, at most 50 MB and 250,000 rows; one header row."},
        "mapping": {"type": "string", "description": "Optional JSON object of column header to field; default: the "
                    "organisation's remembered mapping for these headers, else one suggested from their names."},
    },
}


@extend_schema_view(
    list=extend_schema(summary="List imports", parameters=LIST_PARAMETERS,
                       responses={200: list_envelope("ImportList", ImportSerializer)}),
    retrieve=extend_schema(summary="Retrieve an import (poll its dry run and commit)", responses={200: ImportSerializer}),
)
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

    @extend_schema(summary="Upload a file to import", request={"multipart/form-data": UPLOAD_SCHEMA},
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

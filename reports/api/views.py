"""GET /api/v1/reports/{name}: a report as a file, streamed (READ key).

One route per registered report, so that the OpenAPI document lists each
report's columns and filters; any other name is the API's 404 `not_found`."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from compliance.models import Jurisdiction
from reports.exporters import KINDS, RECONCILIATION_VIEWS, REGISTRY, Exporter, exporter_get
from reports.services import FORMATS, check_format, report_export, xlsx_inline_max_rows
from reports.views import export_response
from together.api.schema import BODY_DATE_PATTERN, filter_parameters
from together.api.views import ApiView

# Report dates: 1900-01-01 to 2999-12-31, as the exporters check.
REPORT_DATE = {"type": "string", "format": "date", "pattern": BODY_DATE_PATTERN}
# The disclosure return's jurisdictions: the regulated ones (UNREGULATED has no return).
DISCLOSURE_JURISDICTIONS = [j.value for j in Jurisdiction if j != Jurisdiction.UNREGULATED]

COMMON = (
    "Streams the report as a file (`Content-Disposition: attachment`, named `<organisation slug>_<report>_<from>_<to>.<format>`; the disclosure return adds its jurisdiction before the dates). "
    "CSV (`text/csv; charset=utf-8`) comes straight from PostgreSQL's COPY in chunks of about 256 KB, whatever the size. "
    "XLSX is built during the request up to {limit:,} rows; a larger XLSX is 400 `validation_failed` with `param: format` "
    "and `reason: too_large_for_xlsx` (use CSV, or the Reports page, which builds it in the background). "
    "UTF-8, one header row. Money columns come in pairs: `…_cents` (integer) and `…_dollars` (two decimals). "
    "Dates are `YYYY-MM-DD`; timestamps ISO 8601 UTC with milliseconds and `Z`. Text cells that begin with `=`, `+`, `-`, "
    "`@`, a tab or a carriage return are prefixed with a single quote so that spreadsheets never run them as formulas; "
    "numbers are never altered. `from` and `to` are inclusive dates; without them, the current financial year "
    "(1 July to 30 June, Australia/Sydney). An unknown parameter is 400 `invalid_request`; a bad value is 400 "
    "`validation_failed` naming it."
)


def _filter_parameters(exporter: Exporter) -> list[OpenApiParameter]:
    out = [
        OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS), required=False, description="`csv` (default) or `xlsx`."),
    ]
    if exporter.name == "disclosure-return":
        out += [
            OpenApiParameter("jurisdiction", {"type": "string", "enum": DISCLOSURE_JURISDICTIONS}, required=False,
                             description="FEDERAL, NSW, VIC, QLD, SA, WA, TAS, ACT or NT; default: the organisation's default jurisdiction."),
            OpenApiParameter("period", {"type": "string", "pattern": "^(19[0-9]{2}|2[0-9]{3})(-[0-9]{2}(-[0-9]{2})?)?$"}, required=False,
                             description="A financial year (`2025-26`), a calendar year (`2027`, for calendar-year regimes) or a date inside the period."),
            OpenApiParameter("from", REPORT_DATE, required=False, description="Without `period`: the period containing this date."),
            OpenApiParameter("to", REPORT_DATE, required=False, description="Must lie inside the same period."),
        ]
        return out
    out += [
        OpenApiParameter("from", REPORT_DATE, required=False, description="First date, inclusive (default: start of the current financial year)."),
        OpenApiParameter("to", REPORT_DATE, required=False, description="Last date, inclusive (default: end of that financial year)."),
    ]
    if exporter.filterset_class:
        # Typed exactly as on the matching list endpoint (same FilterSet, same parser).
        out += filter_parameters(exporter.filterset_class, exporter.filter_names())
    if exporter.name == "reconciliation":
        out.append(OpenApiParameter(
            "view", {"type": "string", "enum": list(RECONCILIATION_VIEWS)}, required=False,
            description="`summary` (default): one line per day and method, per deposit batch and per Stripe payout. "
                        "`payouts`: each Stripe payout arriving in the range, then its gifts one per line (gross, fee, net)."))
    return out


def _description(exporter: Exporter) -> str:
    columns = "\n".join(f"| `{c.name}` | {KINDS[c.kind]} | {c.help} |" for c in exporter.columns)
    extra = ""
    if exporter.name == "disclosure-return":
        extra = ("\n\nWhich periods have a return depends on the disclosure rules on file for the jurisdiction (data, not "
                 "the schema): a jurisdiction and date with no disclosure threshold (e.g. before the first rule) is 400 "
                 "`validation_failed` naming `period`, `from` or `jurisdiction`; so is a `period` written in the other "
                 "regime's form (`2025-26` for a calendar-year regime).")
    return (f"{exporter.description}{extra}\n\n{COMMON.format(limit=xlsx_inline_max_rows())}\n\n"
            f"| column | type | meaning |\n| --- | --- | --- |\n{columns}")


class ReportView(ApiView):
    schema_tags = ["reports"]
    required_scope = "READ"
    report_name: str = ""  # fixed by the per-report subclasses

    def perform_content_negotiation(self, request, force=False):
        # `format` is ours (csv|xlsx), not DRF's renderer override; errors are always JSON.
        return super().perform_content_negotiation(request, force=True)

    def exporter(self) -> Exporter:
        return exporter_get(self.report_name)

    def get_allowed_query_params(self) -> set[str]:
        exporter = self.exporter()
        return {"format", *exporter.allowed_params(), *(n for n in self.request.query_params if exporter.accepts_filter(n))}

    def get(self, request):
        exporter = self.exporter()
        fmt = check_format(request.query_params.get("format"))
        data = {k: v for k, v in request.query_params.items() if k != "format"}
        spec = exporter.resolve(organisation=request.organisation, data=data)
        return export_response(report_export(spec=spec, fmt=fmt, actor=request.actor, allow_job=False))


def _view_for(exporter: Exporter):
    binary = OpenApiResponse(response=OpenApiTypes.BINARY, description="The report file.")
    schema = extend_schema(
        operation_id=f"reports_{exporter.name.replace('-', '_')}",
        summary=f"Export the {exporter.title.lower()} report",
        description=_description(exporter),
        parameters=_filter_parameters(exporter),
        responses={
            (200, "text/csv"): OpenApiResponse(response=OpenApiTypes.STR, description="The report as CSV."),
            (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): binary,
        },
    )

    def get(self, request):
        return ReportView.get(self, request)

    name = exporter.title.title().replace(" ", "").replace("-", "")
    return type(f"{name}ReportView", (ReportView,), {"report_name": exporter.name, "__doc__": exporter.description,
                                                     "get": schema(get)})


REPORT_VIEWS = {name: _view_for(exporter) for name, exporter in REGISTRY.items()}

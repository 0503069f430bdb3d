"""GET /api/v1/reports/{name}: streamed files with the right headers, errors in
the envelope, tenancy by key (other organisation, sandbox twin)."""
from __future__ import annotations

import io

import openpyxl
import pytest

from reports.exporters import REGISTRY
from tests.conftest import client_for, make_key
from tests.reports.conftest import FY_END, FY_START, parse_csv
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db
RANGE = f"from={FY_START.isoformat()}&to={FY_END.isoformat()}"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_csv_streams_with_content_type_and_file_name(books):
    client = client_for(make_key(books.org, "READ"))
    response = client.get(f"/api/v1/reports/donations?format=csv&{RANGE}")
    assert response.status_code == 200
    assert response.streaming  # a StreamingHttpResponse: the file is never held whole
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="{books.org.slug}_donations_2025-07-01_2026-06-30.csv"'
    assert response["x-request-id"].startswith("req_")
    header, rows = parse_csv(body(response))
    assert header == REGISTRY["donations"].column_names
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range()}


def test_csv_is_the_default_format_and_a_write_key_may_read(books):
    response = client_for(make_key(books.org, "WRITE")).get(f"/api/v1/reports/in-kind-register?{RANGE}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    _, rows = parse_csv(body(response))
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range() if g.donation_type == "IN_KIND"}


def test_xlsx(books):
    response = client_for(make_key(books.org, "READ")).get(f"/api/v1/reports/campaign-summary?format=xlsx&{RANGE}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"] == f'attachment; filename="{books.org.slug}_campaign-summary_2025-07-01_2026-06-30.xlsx"'
    workbook = openpyxl.load_workbook(io.BytesIO(body(response)), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert list(rows[0]) == REGISTRY["campaign-summary"].column_names
    raised = rows[0].index("raised_cents")
    assert sum(r[raised] for r in rows[1:]) == sum(g.amount_cents for g in books.in_range() if g.status == "CONFIRMED")


def test_disclosure_return_file_name_says_jurisdiction_and_period(books):
    response = client_for(make_key(books.org, "READ")).get("/api/v1/reports/disclosure-return?jurisdiction=FEDERAL&period=2025-26")
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="{books.org.slug}_disclosure-return_FEDERAL_2025-07-01_2026-06-30.csv"')


@pytest.mark.parametrize("organisation", ["other_org", "sandbox"])
def test_a_key_exports_only_its_own_organisation(books, organisation):
    stranger = getattr(books, organisation)
    response = client_for(make_key(stranger, "READ")).get(f"/api/v1/reports/donations?{RANGE}")
    content = body(response)
    _, rows = parse_csv(content)
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range(stranger)}
    for gift in books.of(books.org):
        assert gift.id.encode() not in content
    assert response["Content-Disposition"].startswith(f'attachment; filename="{stranger.slug}_donations_')


@pytest.mark.parametrize("url, status, code, param", [
    ("/api/v1/reports/donations?format=pdf", 400, "validation_failed", "format"),
    ("/api/v1/reports/donations?format=", 400, "invalid_request", "format"),  # empty values are refused API-wide
    ("/api/v1/reports/nope", 404, "not_found", None),
    ("/api/v1/reports/donations?colour=red", 400, "invalid_request", "colour"),
    ("/api/v1/reports/donations?from=2025-13-01", 400, "validation_failed", "from"),
    ("/api/v1/reports/donations?from=2026-01-02&to=2026-01-01", 400, "validation_failed", "to"),
    ("/api/v1/reports/donations?status=LOST", 400, "validation_failed", "status"),
    ("/api/v1/reports/campaign-summary?payment_method=CASH", 400, "invalid_request", "payment_method"),
    ("/api/v1/reports/disclosure-return?jurisdiction=QLD&period=2025-26", 400, "validation_failed", "period"),
    ("/api/v1/reports/disclosure-return?jurisdiction=FEDERAL&period=2025-26&status=OPEN", 400, "invalid_request", "status"),
])
def test_errors_in_the_envelope(books, url, status, code, param):
    response = client_for(make_key(books.org, "READ")).get(url, HTTP_ACCEPT="text/csv")
    if code is None:
        assert response.status_code == status, response.content[:300]
        return
    assert_error(response, status, code, **({"param": param} if param else {}))


def test_no_key_is_401(books):
    assert_error(client_for(None).get("/api/v1/reports/donations"), 401, "unauthorized")


def test_post_is_405(books):
    response = client_for(make_key(books.org, "WRITE")).post("/api/v1/reports/donations", {}, format="json")
    assert_error(response, 405, "method_not_allowed")


def test_xlsx_too_large_for_a_request(books, settings):
    settings.REPORTS_XLSX_INLINE_MAX_ROWS = 3
    response = client_for(make_key(books.org, "READ")).get(f"/api/v1/reports/donations?format=xlsx&{RANGE}")
    error = assert_error(response, 400, "validation_failed", param="format")
    assert error["reason"] == "too_large_for_xlsx" and error["limit"] == 3 and error["rows"] == len(books.in_range())
    # CSV has no limit.
    assert client_for(make_key(books.org, "READ")).get(f"/api/v1/reports/donations?{RANGE}").status_code == 200


def test_every_export_is_audited(books):
    from organisations.models import AuditEntry

    client_for(make_key(books.org, "READ")).get(f"/api/v1/reports/reconciliation?{RANGE}&payment_method=CASH")
    entry = AuditEntry.objects.filter(organisation=books.org, action="report.exported").latest("created_at")
    assert entry.after["report"] == "reconciliation" and entry.after["params"]["payment_method"] == "CASH"
    assert entry.actor_type == "API_KEY"


def test_openapi_documents_each_report_and_its_columns(books):
    document = client_for(None).get("/api/v1/openapi.json").json()
    for name, exporter in REGISTRY.items():
        operation = document["paths"][f"/api/v1/reports/{name}"]["get"]
        assert operation["tags"] == ["reports"]  # issue 14: reports are not donation records
        for column in exporter.columns:
            assert f"`{column.name}`" in operation["description"], (name, column.name)
        params = {p["name"] for p in operation["parameters"]}
        assert {"format", "from", "to"} <= params
        assert set(operation["responses"]["200"]["content"]) == {
            "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
        assert {"400", "401", "403", "404"} <= set(operation["responses"])
    disclosure = document["paths"]["/api/v1/reports/disclosure-return"]["get"]
    assert {"jurisdiction", "period"} <= {p["name"] for p in disclosure["parameters"]}

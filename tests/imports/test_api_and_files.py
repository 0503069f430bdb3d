from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from donations.models import Donation
from imports import services
from tests.imports.helpers import upload
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


def post_file(client, name: str, content: bytes, **extra):
    return client.post("/api/v1/imports", {"file": io.BytesIO(content) if False else _named(name, content), **extra},
                       format="multipart")


def _named(name, content):
    f = io.BytesIO(content)
    f.name = name
    return f


def test_upload_poll_commit_result_through_the_api(org, write_client, read_client):
    body = "First name,Last name,Email,Amount,Date\nAnn,Lee,ann@example.org,$25.00,01/03/2025\n".encode()
    assert_error(post_file(read_client, "g.csv", body), 403, "forbidden")
    response = post_file(write_client, "g.csv", body)
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    services.import_plan_run(import_id=job_id)
    polled = write_client.get(f"/api/v1/imports/{job_id}").json()
    assert polled["status"] == "READY" and polled["plan_counts"]["CREATE_GIFT"] == 1
    assert Donation.objects.filter(organisation=org).count() == 0
    committed = write_client.post(f"/api/v1/imports/{job_id}/commit")
    assert committed.status_code == 202, committed.content
    services.import_commit_run(import_id=job_id)
    done = write_client.get(f"/api/v1/imports/{job_id}").json()
    assert done["status"] == "COMPLETED" and done["progress"] == 100
    assert Donation.objects.filter(organisation=org).count() == 1
    result = write_client.get(f"/api/v1/imports/{job_id}/result")
    text = b"".join(result.streaming_content).decode("utf-8-sig")
    assert "CREATE_GIFT" in text and Donation.objects.get(organisation=org).id in text
    assert_error(write_client.post(f"/api/v1/imports/{job_id}/commit"), 409, "conflict")


@pytest.mark.parametrize("name,content,reason", [
    ("empty.csv", b"", "empty_file"),
    ("only-header.csv", b"Email,Amount\n\n\n", "no_rows"),
    ("old.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "unsupported_format"),
    ("fake.xlsx", b"Email\nx@y.z\n", "unsupported_format"),
    ("binary.csv", b"\x00\x01\x02" * 100, "unsupported_format"),
])
def test_bad_files_answer_clearly(write_client, name, content, reason):
    response = post_file(write_client, name, content)
    error = assert_error(response, 400, "invalid_request")
    assert error["param"] == "file" and error.get("reason") == reason, error


def test_too_large_and_too_many_rows(write_client, settings):
    settings.IMPORTS_MAX_BYTES = 1000
    error = assert_error(post_file(write_client, "big.csv", b"Email\n" + b"a@example.org\n" * 200), 400, "invalid_request")
    assert error["reason"] == "file_too_large"
    settings.IMPORTS_MAX_BYTES = 50 * 1024 * 1024
    settings.IMPORTS_MAX_ROWS = 1000
    million = b"Email\n" + b"a@example.org\n" * 1_000_000  # 14 MB: counted as it streams, refused past the limit
    error = assert_error(post_file(write_client, "million.csv", million), 400, "invalid_request")
    assert error["reason"] == "too_many_rows"


def test_multipart_only(write_client):
    assert_error(write_client.post("/api/v1/imports", {"file": "x"}, format="json"), 400, "invalid_request")


def test_encodings_bom_and_separators(org):
    cp1252 = "First name;Email;Amount;Date\nZoë;zoe@example.org;$1.234,50;1/3/2025\n".encode("cp1252")
    job = upload(org, cp1252)
    assert job.encoding == "cp1252" and any("Windows-1252" in n for n in job.notes) and job.delimiter == ";"
    row = job.rows.get()
    assert row.outcome == "INVALID" and row.field == "amount"  # 1.234,50 is not an amount in AUD's grammar
    bom = "\ufeffFirst name,Email,Amount,Date\nZoë,zoe@example.org,\"$1,234.50\",2025-03-01\n".encode("utf-8")
    job = upload(org, bom)
    assert job.headers[0] == "First name" and job.rows.get().outcome == "CREATE_GIFT"


def test_xlsx_dates_serials_and_formulas_are_text(org):
    import datetime as dt

    book = Workbook()
    sheet = book.active
    sheet.append(["First name", "Email", "Amount", "Date", "Notes"])
    sheet.append(["Ann", "ann@example.org", 25.5, dt.datetime(2025, 3, 1), "=1+1"])
    sheet.append(["Bob", "bob@example.org", "=A1*2", 45720, "ok"])
    sheet.append([None, None, None, None, None])
    sheet.append(["Cat", "cat@example.org", 10, "31/12/2024", "-minus"])
    out = io.BytesIO()
    book.save(out)
    job = upload(org, out.getvalue(), name="gifts.xlsx")
    assert job.file_format == "xlsx" and job.rows_total == 3
    got = {r.position: (r.outcome, r.field) for r in job.rows.all()}
    assert got == {2: ("CREATE_GIFT", ""), 3: ("INVALID", "amount"), 5: ("CREATE_GIFT", "")}
    from tests.imports.helpers import commit

    commit(org, job)
    gift = Donation.objects.get(organisation=org, donor__email="ann@example.org")
    assert gift.notes == "=1+1" and gift.amount_cents == 2550 and gift.donation_date == dt.date(2025, 3, 1)
    text = b"".join(services.import_result_chunks(job=job)).decode("utf-8-sig")
    assert "'=1+1" in text and "'-minus" in text


def test_the_api_guard_answers_an_oversized_upload_before_reading_it(write_client, settings):
    settings.IMPORTS_MAX_BYTES = 1000  # the guard allows the limit plus 64 KB of multipart overhead
    response = post_file(write_client, "big.csv", b"Email\n" + b"a@example.org\n" * 10_000)
    error = assert_error(response, 400, "invalid_request")
    assert error["param"] == "file" and error["reason"] == "file_too_large"

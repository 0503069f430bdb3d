"""The public errors guide: /developer/api/errors and one page per code, the
pages every envelope's `type` and `doc_url` point at."""
from __future__ import annotations

import html as html_lib

import pytest
from django.conf import settings

from together.exceptions import ERROR_CODES

pytestmark = pytest.mark.django_db

PUBLISHED = [  # errors.md, plus our internal_error (decisions.md)
    "invalid_request", "validation_failed", "unauthorized", "forbidden", "not_found", "method_not_allowed",
    "conflict", "idempotency_conflict", "rate_limited", "internal_error",
]


def text_of(response) -> str:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return html_lib.unescape(response.content.decode())


def test_every_published_code_is_known():
    assert set(PUBLISHED) <= set(ERROR_CODES)


def test_index_lists_every_code_with_its_status_and_a_link(anon_client):
    page = text_of(anon_client.get("/developer/api/errors"))
    assert "<html" in page.lower()
    for code, (status, title, _help) in ERROR_CODES.items():
        assert code in page, code
        assert str(status) in page, code
        assert f"/developer/api/errors/{code}" in page, code


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_each_code_has_a_page_explaining_it(anon_client, code):
    status, title, help_text = ERROR_CODES[code]
    page = text_of(anon_client.get(f"/developer/api/errors/{code}"))
    assert code in page
    assert str(status) in page
    assert title in page
    # It says what happened and what to do: the guidance text is on the page.
    assert help_text.split(".")[0].replace("`", "") in page.replace("`", "").replace("<code>", "").replace("</code>", "")
    assert len(help_text) > 40


@pytest.mark.parametrize("code", ["nope", "NOT_FOUND", "not-found", "internal", "404"])
def test_unknown_code_is_404(anon_client, code):
    response = anon_client.get(f"/developer/api/errors/{code}")
    assert response.status_code == 404


def test_envelope_links_resolve_to_these_pages(anon_client, read_client):
    """Follow a real envelope's doc_url (on this host) to its page."""
    error = read_client.get("/api/v1/donors?bogus=1").json()["error"]
    assert error["doc_url"].startswith(settings.SITE_URL)
    path = error["doc_url"][len(settings.SITE_URL):]
    page = text_of(anon_client.get(path))
    assert "invalid_request" in page


def test_pages_need_no_login(client):
    assert client.get("/developer/api/errors").status_code == 200
    assert client.get("/developer/api/errors/rate_limited").status_code == 200

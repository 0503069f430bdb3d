"""Every dashboard page extends the layout: walked from the URL conf (a new page
is covered the day it is added), rendered as a signed-in ADMIN of a seeded
organisation, and checked for the layout's landmarks: the main navigation, one
<main>, the stylesheet and the page's <h1>. A page rendered outside base.html
(no navigation, no styles) fails here, as *Reports* once did.

Routes that are not pages (htmx fragments, JSON, files) are listed in
NOT_PAGES with what they answer; each is checked to be what it says.
"""
from __future__ import annotations

import re

import pytest

from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import build_world
from tests.dashboard.test_tenancy import DASHBOARD, OBJECT_ROUTES, url_for

# Route name -> what it answers instead of a page.
NOT_PAGES = {
    "donor-search": "fragment",
    "donor-employer-options": "fragment",
    "gift-cap-room": "fragment",
    "recurring-donor-fragment": "fragment",
    "receipts-donation-fragment": "fragment",
    "receipts-donor-fragment": "fragment",
    "report-job-status": "json",
    "report-job-download": "file",
    "receipt-pdf": "file",
    "receipts-statement": "file",
    "engage-link-suggest": "fragment",
    "receipts-run": "fragment",
    "import-result": "file",
    "donations-export": "file",
    "donors-export": "file",
}
STYLESHEET = re.compile(r'<link rel="stylesheet" href="[^"]*/css/together\.css"')


def landmarks_missing(html: str) -> list[str]:
    """The layout's landmarks absent from a page."""
    missing = []
    if '<nav aria-label="Main">' not in html:
        missing.append("main navigation")
    if html.count('<main id="main">') != 1:
        missing.append("one <main>")
    if not STYLESHEET.search(html):
        missing.append("stylesheet")
    if not re.search(r"<h1[ >]", html):
        missing.append("<h1>")
    if not html.lstrip().lower().startswith("<!doctype html>"):
        missing.append("doctype")
    return missing


@pytest.fixture
def world(org):
    return build_world(org, "Layout")


def test_every_dashboard_page_extends_the_layout(org, world):
    client = client_as(make_user(org, "ADMIN"))
    problems = []
    pages = 0
    for route in DASHBOARD:
        if route.params and route.name not in OBJECT_ROUTES:
            continue  # test_tenancy's classification test fails for it until it has a row
        response = client.get(url_for(route, world))
        kind = NOT_PAGES.get(route.name)
        content_type = response.get("Content-Type", "")
        if kind is not None:
            if kind == "json" and "application/json" not in content_type or kind == "file" and "text/html" in content_type:
                problems.append((route.name, f"listed as {kind}, answered {content_type}"))
            elif kind == "fragment" and "<html" in response.content.decode(errors="replace").lower():
                problems.append((route.name, "listed as a fragment, answered a whole page"))
            continue
        if response.status_code != 200:
            problems.append((route.name, f"status {response.status_code}"))
            continue
        if "text/html" not in content_type:
            problems.append((route.name, f"{content_type}: not a page (list it in NOT_PAGES)"))
            continue
        pages += 1
        missing = landmarks_missing(response.content.decode())
        if missing:
            problems.append((route.name, f"missing {', '.join(missing)}"))
    assert not problems, problems
    assert pages >= 25, pages


def test_the_check_fails_on_a_page_outside_the_layout():
    """The landmarks check is not vacuous: a bare page, as Reports once rendered, fails it."""
    bare = "<!doctype html><html><body><h1>Reports</h1><form method='post'></form></body></html>"
    assert landmarks_missing(bare) == ["main navigation", "one <main>", "stylesheet"]

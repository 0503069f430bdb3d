"""Every dashboard page in real Chromium at 1280 and 390 pixels wide, as a
signed-in ADMIN of a seeded organisation: a screenshot of each (in
artifacts/screenshots/responsive/, not committed) and, at 390 px, no horizontal
overflow (the page is no wider than the window: a wide table scrolls inside
its own box or stacks its cells). The pages come from the URL conf, as in
test_layout, so a new page is checked the day it is added."""
from __future__ import annotations

import pytest

from tests.dashboard.conftest import SCREENSHOTS, make_user, sign_in
from tests.dashboard.helpers import build_world
from tests.dashboard.test_layout import NOT_PAGES
from tests.dashboard.test_tenancy import DASHBOARD, OBJECT_ROUTES, url_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]

WIDTHS = (1280, 390)
OVERFLOW = """() => {
  const over = [];
  for (const el of document.querySelectorAll('main *, header *')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && getComputedStyle(el).position !== 'absolute') {
      let p = el.parentElement, clipped = false;
      while (p) { const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') { clipped = true; break; } p = p.parentElement; }
      if (!clipped) over.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : ''));
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, over: over.slice(0, 5)};
}"""
# Loaded and settled: no htmx request in flight or swap under way (a page's slots, such as the donor's
# plans, fill after load). Waiting for "networkidle" instead cost half a second of silence on every
# one of the 80 page loads.
SETTLED = "() => document.readyState === 'complete' && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
# (A route with an id and no OBJECT_ROUTES row fails test_tenancy's classification test instead.)
PAGES = [r for r in DASHBOARD if r.name not in NOT_PAGES and (not r.params or r.name in OBJECT_ROUTES)]


def test_every_page_fits_a_phone_and_is_screenshotted(browser, live_server, org):
    world = build_world(org, "Resp")
    user = make_user(org, "ADMIN", name="Rae Responsive")
    out = SCREENSHOTS / "responsive"
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for width in WIDTHS:
        context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 900}, locale="en-AU",
                                      timezone_id="Australia/Sydney")
        context.set_default_timeout(15_000)
        sign_in(context, user, live_server, organisation=org)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for route in PAGES:
            response = page.goto(url_for(route, world))
            if response is None or response.status != 200:
                problems.append((route.name, width, f"status {response and response.status}"))
                continue
            page.wait_for_function(SETTLED)
            page.screenshot(path=str(out / f"{route.name}-{width}.png"), full_page=True)
            if width == 390:
                found = page.evaluate(OVERFLOW)
                if found["scroll"] > found["inner"]:
                    problems.append((route.name, width, f"page {found['scroll']} px wide in {found['inner']}", found["over"]))
        context.close()
        if errors:
            problems.append(("javascript", width, errors))
    assert len(PAGES) >= 25
    assert not problems, problems

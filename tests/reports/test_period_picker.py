"""The Reports page's period picker (presets: this financial year by default,
last financial year, this calendar year, a custom range) and its help text,
written with inline marks and shown as HTML (never raw backticks, never
markup a description could inject)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from reports.exporters import REGISTRY
from reports.forms import ReportForm, period_presets
from tests.reports.conftest import parse_csv
from tests.reports.test_pages_and_jobs import member_client
from together.templatetags.inline_markup import render_inline

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("today, expected", [
    (dt.date(2026, 12, 2), {"this_fy": ("2026-07-01", "2027-06-30"), "last_fy": ("2025-07-01", "2026-06-30"),
                            "this_year": ("2026-01-01", "2026-12-31")}),
    (dt.date(2027, 7, 1), {"this_fy": ("2027-07-01", "2028-06-30"), "last_fy": ("2026-07-01", "2027-06-30"),
                           "this_year": ("2027-01-01", "2027-12-31")}),
    (dt.date(2027, 6, 30), {"this_fy": ("2026-07-01", "2027-06-30"), "last_fy": ("2025-07-01", "2026-06-30"),
                            "this_year": ("2027-01-01", "2027-12-31")}),
])
def test_presets_on_a_day(today, expected):
    got = {key: (start.isoformat(), end.isoformat()) for key, (_, start, end) in period_presets(today).items()}
    assert got == expected


def test_page_defaults_to_this_financial_year_with_the_presets(books):
    html = member_client(books.org).get(reverse("reports")).content.decode()
    this_fy = period_presets(timezone.localdate())["this_fy"]
    checked = re.search(r'<input[^>]*name="preset"[^>]*checked[^>]*>', html).group(0)
    assert 'value="this_fy"' in checked
    for value in ("this_fy", "last_fy", "this_year", "custom"):
        assert f'name="preset" value="{value}"' in html
    assert f'value="{this_fy[1].isoformat()}"' in html and f'value="{this_fy[2].isoformat()}"' in html
    assert "Custom range" in html and 'id="period-presets"' in html and "report-period.js" in html


def test_a_preset_sets_the_dates_a_custom_range_keeps_them(books):
    """A preset wins over the dates sent (the page without its script); custom uses them."""
    client = member_client(books.org)
    base = {"report": "donations", "format": "csv", "date_from": "2026-01-01", "date_to": "2026-01-31"}
    last_fy = period_presets(timezone.localdate())["last_fy"]
    _, rows = parse_csv(b"".join(client.post(reverse("reports"), {**base, "preset": "last_fy"}).streaming_content))
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range(books.org, last_fy[1], last_fy[2])}
    _, custom = parse_csv(b"".join(client.post(reverse("reports"), {**base, "preset": "custom"}).streaming_content))
    assert {r["donation_id"] for r in custom} == {g.id for g in books.in_range(books.org, dt.date(2026, 1, 1), dt.date(2026, 1, 31))}
    assert len(custom) < len(rows)
    refused = client.post(reverse("reports"), {**base, "preset": "next_decade"})
    assert refused.status_code == 400 and "next_decade" in refused.content.decode()


def test_the_admin_form_takes_its_dates_as_sent(books):
    from organisations.models import Organisation

    form = ReportForm({"report": "donations", "format": "csv", "date_from": "2026-01-01", "date_to": "2026-01-31",
                       "organisation": books.org.id}, organisations=Organisation.objects.filter(pk=books.org.id))
    assert "preset" not in form.fields and form.is_valid(), form.errors
    assert form.report_data() == {"from": "2026-01-01", "to": "2026-01-31"}


def test_help_text_is_rendered_not_raw(books):
    html = member_client(books.org).get(reverse("reports")).content.decode()
    help_html = html.split('<dl class="report-help">')[1].split("</dl>")[0]
    assert "`" not in help_html
    assert "<code>status</code>" in help_html and "<code>view=payouts</code>" in help_html
    assert sum("`" in e.description for e in REGISTRY.values()) >= 3  # the descriptions do use the marks


@pytest.mark.parametrize("text, html", [
    ("the `status` filter", "the <code>status</code> filter"),
    ("**all** gifts, *each* one", "<strong>all</strong> gifts, <em>each</em> one"),
    ("see [the API](/developer/docs/api)", 'see <a href="/developer/docs/api">the API</a>'),
    ("`a *b* c`", "<code>a *b* c</code>"),
    ("2 * 3 * 4", "2 * 3 * 4"),
    ("<script>alert(1)</script> `<b>`", "&lt;script&gt;alert(1)&lt;/script&gt; <code>&lt;b&gt;</code>"),
    ("[x](javascript:alert(1))", "[x](javascript:alert(1))"),
    ('[x](/a" onmouseover="y)', '[x](/a&quot; onmouseover=&quot;y)'),
    (None, ""),
])
def test_inline_markup(text, html):
    assert render_inline(text) == html

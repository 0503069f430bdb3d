"""Dashboard rows of `make bench` (issue 9): the main staff pages' server time.

Data: the bench organisation's 200k donors and 1M donations (`manage.py
seed_bench`, shared with bench/records.py), and a dashboard ADMIN of it,
`bench-dashboard@bench.together.test`, made here once (memberships through
organisations.services) with a session of its own for each run.

Rows: ms per page, sequential GETs on one keep-alive connection signed in with
that session (client and server on one machine, so this is the server's time
plus a loopback round trip), against the same loop on the bare Django view
(/_bench/empty: middleware, no template, no query). Goal: every page < 100 ms.
"""
from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

GOAL_MS = 100
USER_EMAIL = "bench-dashboard@bench.together.test"
EMPTY_MS = "GET /_bench/empty, ms (one connection)"

_state: dict = {}


def _seed(ctx: BenchContext) -> None:
    from bench.records import _seed as records_seed

    records_seed(ctx)


def _session_cookie(ctx: BenchContext) -> str:
    """A signed-in session for the bench dashboard ADMIN (created once, a fresh session per run)."""
    if "cookie" not in _state:
        from django.conf import settings
        from django.db import connection
        from django.test import Client

        from organisations.models import Role
        from organisations.services import membership_set, user_get_or_create

        user = user_get_or_create(email=USER_EMAIL, full_name="Bench Dashboard")
        membership_set(organisation=ctx.organisation, user=user, role=Role.ADMIN)
        client = Client()
        client.force_login(user)
        _state["cookie"] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        connection.close()  # nothing shared with the load
    return _state["cookie"]


DASHBOARD_TABLES = ("payments_recurringplan", "compliance_donoraggregate", "compliance_disclosureobligation",
                    "compliance_compliancebreach", "donations_dailyrollup", "donations_campaigndonor", "donations_campaign")
BENCH_CAMPAIGN = "Bench appeal"
BENCH_CAMPAIGN_GIFTS = 50_000


def _bench_campaign(ctx: BenchContext) -> str:
    """A campaign holding 50,000 of the bench gifts (every 20th, spread over the whole
    range of dates), made once through the services; its gifts are assigned in one
    UPDATE, as seed_bench COPY-loads them, then the per-day rollup (which has the
    campaign) is rebuilt as seed_bench does."""
    from django.db import connection, transaction

    from donations.models import Campaign, Donation
    from donations.rollups import rollup_rebuild
    from donations.services import campaign_create
    from together.actors import Actor

    campaign = Campaign.objects.for_organisation(ctx.organisation).filter(name=BENCH_CAMPAIGN).first()
    if campaign is None:
        campaign = campaign_create(organisation=ctx.organisation, actor=Actor.system("bench"), name=BENCH_CAMPAIGN,
                                   goal_cents=1_000_000_000)
    if not Donation.objects.for_organisation(ctx.organisation).filter(campaign_id=campaign.id).exists():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """UPDATE donations_donation SET campaign_id = %s WHERE id IN (
                       SELECT id FROM donations_donation WHERE organisation_id = %s AND id LIKE 'cbdn%%' ORDER BY id LIMIT %s)
                     AND organisation_id = %s AND right(id, 1) IN ('0', 'k')""",
                [campaign.id, ctx.organisation.id, BENCH_CAMPAIGN_GIFTS * 18, ctx.organisation.id],
            )
        rollup_rebuild(organisation_id=ctx.organisation.id)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE donations_donation")
            cursor.execute("VACUUM ANALYZE donations_dailyrollup")
    with connection.cursor() as cursor:
        # Other rows fill these tables in bulk just before (plans, aggregates, rollups); without
        # statistics the planner sorted all 3,680 plans for the recurring list's first page (27 ms, not 0.2),
        # and without a visibility map a campaign's donors are counted from the heap, not the index.
        for table in DASHBOARD_TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
    return campaign.id


BENCH_TAG = "Bench volunteers"
BENCH_TAG_DONORS = 2_000


def _bench_tag(ctx: BenchContext) -> str:
    """A tag on 2,000 of the bench donors (every 100th), made once: the tag through
    donations.crm, its links in one INSERT (as seed_bench COPY-loads), then the
    donors' tags column refreshed as the tag services do."""
    from django.db import connection, transaction

    from donations import crm
    from donations.models import DonorTag
    from together.actors import Actor

    tag = crm.tag_by_name(organisation=ctx.organisation, name=BENCH_TAG)
    if tag is None:
        tag = crm.tag_create(organisation=ctx.organisation, actor=Actor.system("bench"), name=BENCH_TAG)
    if not DonorTag.objects.filter(tag=tag).exists():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO donations_donortag (donor_id, tag_id, created_at)
                   SELECT id, %s, now() FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM donations_donor
                                              WHERE organisation_id = %s) d
                    WHERE n %% 100 = 0 LIMIT %s""",
                [tag.id, ctx.organisation.id, BENCH_TAG_DONORS])
            ids = list(DonorTag.objects.filter(tag=tag).values_list("donor_id", flat=True))
            crm._donor_tags_refresh(ids)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE donations_donortag")
    return BENCH_TAG


def _ids(ctx: BenchContext) -> dict:
    """A donor with gifts and the bench campaign of the bench organisation, for the detail pages."""
    if "ids" not in _state:
        from django.db import connection

        from donations.models import Donation

        gift = Donation.objects.for_organisation(ctx.organisation).order_by("-created_at", "-id").values("donor_id").first()
        _state["ids"] = {"donor": gift["donor_id"] if gift else None, "campaign": _bench_campaign(ctx),
                          "tag": _bench_tag(ctx)}
        connection.close()
    return _state["ids"]


def _page_latency(ctx: BenchContext, path: str, *, cookie: str | None) -> Measurement:
    parts = urlsplit(ctx.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Accept": "text/html"}
    if cookie:
        headers["Cookie"] = cookie
    errors = 0
    latencies: list[float] = []
    end_warm = time.perf_counter() + ctx.warmup
    while True:
        began = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        ended = time.perf_counter()
        ok = response.status == 200 and bool(body)
        if began >= end_warm:
            latencies.append((ended - began) * 1000)
            errors += 0 if ok else 1
            if sum(latencies) >= ctx.duration * 1000:
                break
    conn.close()
    latencies.sort()
    mean = sum(latencies) / len(latencies)
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    detail = f"{len(latencies)} sequential requests, p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms"
    if cookie is not None:
        detail += f"; goal < {GOAL_MS} ms: {'met' if mean < GOAL_MS else 'MISSED'}"
    return Measurement(mean, unit="ms/page", higher_is_better=False, errors=errors, detail=detail,
                       metrics={"p50_ms": p50, "p95_ms": p95, "p99_ms": p99})


@baseline(EMPTY_MS)
def empty_ms(ctx: BenchContext) -> Measurement:
    return _page_latency(ctx, "/_bench/empty", cookie=None)


def _dashboard_row(path_for):
    def run(ctx: BenchContext) -> Measurement:
        _seed(ctx)
        cookie = _session_cookie(ctx)
        return _page_latency(ctx, path_for(_ids(ctx)), cookie=cookie)

    return run


PAGES = [
    ("Dashboard: home (FY totals, alerts, recent gifts)", lambda ids: "/"),
    ("Dashboard: donors list (first page of 200k)", lambda ids: "/donors/"),
    ("Dashboard: donors search 'smith'", lambda ids: "/donors/?q=smith"),
    ("Dashboard: donor page (details, gifts, compliance)", lambda ids: f"/donors/{ids['donor']}/"),
    ("Dashboard: donations list (first page of 1M)", lambda ids: "/donations/"),
    ("Dashboard: donations by amount, largest first", lambda ids: "/donations/?ordering=-amount_cents"),
    ("Dashboard: donations by donor, A to Z", lambda ids: "/donations/?ordering=donor"),
    ("Dashboard: donors by total, largest first", lambda ids: "/donors/?ordering=-donations_total_cents"),
    ("Dashboard: donors by name", lambda ids: "/donors/?ordering=name"),
    ("Dashboard: donors by last gift, latest first", lambda ids: "/donors/?ordering=-last_donation_date"),
    ("Dashboard: record a gift (form)", lambda ids: "/gifts/new"),
    ("Dashboard: gift type-ahead 'smi'", lambda ids: "/donors/search?q=smi"),
    ("Dashboard: campaigns (rollups)", lambda ids: "/campaigns/"),
    # Issue 19's pictures: each page with its charts.
    ("Dashboard: campaign page (progress, gifts by week; 50k gifts)", lambda ids: f"/campaigns/{ids['campaign']}/"),
    ("Dashboard: compliance (obligations timeline, jurisdictions)", lambda ids: "/settings/compliance/obligations"),
    ("Dashboard: recurring (plans, revenue by month)", lambda ids: "/recurring"),
    ("Dashboard: cap alerts of past periods", lambda ids: "/alerts/history"),
    # Issue 19's tags and employer link.
    ("Dashboard: donors with a tag (2,000 of 200k)", lambda ids: f"/donors/?tag={ids['tag'].replace(' ', '+')}"),
    ("Dashboard: donations of donors with a tag", lambda ids: f"/donations/?tag={ids['tag'].replace(' ', '+')}"),
    ("Dashboard: tags page", lambda ids: "/donors/tags/"),
    ("Dashboard: donor edit (employer options of 20k organisations)", lambda ids: f"/donors/{ids['donor']}/edit"),
]

for _name, _path_for in PAGES:
    scenario(_name, baseline=EMPTY_MS, goal=Goal.of("issues 15, 19", ("p95_ms", "<", 50, "ms")))(_dashboard_row(_path_for))

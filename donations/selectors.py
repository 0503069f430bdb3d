from __future__ import annotations

import datetime as dt
import functools
import re
from collections import defaultdict

from django.db import connection, transaction
from django.db.models import Case, Count, F, Func, OuterRef, Q, QuerySet, Subquery, Sum, TextField, Value, When
from django.db.models.functions import Coalesce, Concat, Lower, NullIf, Replace, Trim, TruncMonth, TruncWeek

from compliance.rules import COUNTED, COUNTED_CENTS, counted_sum
from donations.models import Campaign, CampaignDonor, DailyRollup, Donation, Donor, DonorTag
from donations.representations import CAMPAIGN_FIELDS, DONATION_FIELDS, DONOR_FIELDS, render_campaign, render_donation, render_donor
from organisations.models import Organisation
from together.api.renderers import dumps
from together.api.sqljson import RowJson, Unsupported


def donors_with_email(queryset: QuerySet, email: str) -> QuerySet:
    """The donors of `queryset` whose email is `email`, ignoring case, found through
    the (lower(email), organisation) unique index rather than a scan of the organisation."""
    return queryset.alias(email_lower=Lower("email")).filter(email__isnull=False, email_lower=Lower(Value(email)))


def donor_with_email(queryset: QuerySet, email: str) -> Donor | None:
    """The donor of an organisation's `queryset` whose email is `email`, ignoring case,
    or None: at most one (the unique index), read through that index. Without an
    ORDER BY: PostgreSQL does not use the partial index's statistics, guesses a
    thousand matches, and with `ORDER BY created_at LIMIT 1` walked the
    organisation's donors by date instead (0.4 s at 200,000 donors, per card payment)."""
    return next(iter(donors_with_email(queryset, email).order_by()[:1]), None)


def donor_snapshot(*, donor_id: str) -> dict:
    return render_donor(Donor.objects.filter(pk=donor_id).values(*DONOR_FIELDS).get())


# The donation's receipt (issue 18), as rendered: its standing receipt, else its latest
# withdrawn one. Read through the `receipts` reverse relation: donations never imports receipts.
RECEIPT_FIELDS = ("receipt_number", "receipt_status")


def _latest_receipt() -> QuerySet:
    """A gift's receipts (of the outer query's donation), the one it shows first."""
    receipt_model = Donation._meta.get_field("receipts").related_model
    return (receipt_model.objects.filter(donation=OuterRef("pk"))
            .order_by(Case(When(status="ISSUED", then=Value(0)), default=Value(1)), "-number"))


def with_receipt(queryset: QuerySet) -> QuerySet:
    """`queryset` of donations annotated with RECEIPT_FIELDS (two correlated
    subqueries on the receipts' donation index: no extra query per page)."""
    latest = _latest_receipt()
    return queryset.annotate(receipt_number=Subquery(latest.values("number")[:1]),
                             receipt_status=Subquery(latest.values("status")[:1]))


def receipt_json():
    """RECEIPT_FIELDS as the JSON members ending a list page's donation
    (`,"receipt_number":42,"receipt_status":"ISSUED"`, or both null), from one subquery:
    the receipts' donation index is read once a row, where with_receipt reads it twice."""
    members = Concat(Value(',"receipt_number":'), Func("number", template="(%(expressions)s)::text"),
                     Value(',"receipt_status":'), Func("status", template="to_json(%(expressions)s)::text"),
                     output_field=TextField())
    none = "".join("," + dumps(name).decode() + ":null" for name in RECEIPT_FIELDS)
    return Coalesce(Subquery(_latest_receipt().values(members=members)[:1]), Value(none), output_field=TextField())


@functools.cache
def donation_row_json() -> RowJson | None:
    """The list pages' donations as PostgreSQL writes them (together.api.sqljson): render_donation's bytes,
    with_receipt's fields last. None if a field's rendering is one sqljson does not reproduce."""
    try:
        return RowJson.for_model(Donation, DONATION_FIELDS, constants={"object": "donation"},
                                 tail_json={"_receipt_json": receipt_json()})
    except Unsupported:
        return None


def donation_snapshot(*, donation_id: str) -> dict:
    return render_donation(with_receipt(Donation.objects.filter(pk=donation_id)).values(*DONATION_FIELDS, *RECEIPT_FIELDS).get())


def _jsonb_order(value):
    """`value` with its objects' keys in the order PostgreSQL's jsonb keeps them
    (shorter keys first, then by their bytes), as a re-read would give them."""
    if isinstance(value, dict):
        return {k: _jsonb_order(value[k]) for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def donation_snapshot_of(donation: Donation) -> dict:
    """`donation_snapshot` of a gift just inserted, from the instance itself (no
    re-read): the same dict, field by field. A new gift has no receipt yet (the
    receipts app issues it after the commit), so its receipt fields are None."""
    row = {}
    for name in DONATION_FIELDS:
        value = getattr(donation, name)
        if isinstance(value, (dict, list)):
            value = _jsonb_order(value)
        row[name] = value
    return render_donation(row | {"receipt_number": None, "receipt_status": None})


def campaign_rollups(*, organisation: Organisation, campaign_ids: list[str]) -> dict[str, dict]:
    """Raised (what counted gifts kept) and gifts per campaign from the per-day rollup (a row
    a day, not a row a gift), and distinct donors as its CampaignDonor rows: one query,
    whatever the number of campaigns (correlated subqueries per campaign: no GROUP BY,
    so no sort of every rollup or donor row). A campaign with no counted gift is left out."""
    if not campaign_ids:
        return {}
    rollup = DailyRollup.objects.filter(organisation=organisation, campaign_id=OuterRef("pk")).order_by().values("campaign_id")
    raised = Subquery(rollup.annotate(v=Sum("counted_cents")).values("v")[:1])
    gifts = Subquery(rollup.annotate(v=Sum("gifts")).values("v")[:1])
    donors = Subquery(CampaignDonor.objects.filter(organisation=organisation, campaign_id=OuterRef("pk")).order_by()
                      .annotate(n=Func(F("id"), function="COUNT")).values("n")[:1])
    rows = (Campaign.objects.for_organisation(organisation).filter(pk__in=campaign_ids)
            .annotate(raised_cents=raised, donations_count=gifts, donors_count=donors)
            .values_list("pk", "raised_cents", "donations_count", "donors_count"))
    return {
        pk: {"campaign_id": pk, "raised_cents": raised_cents, "donations_count": count, "donors_count": donors_count or 0}
        for pk, raised_cents, count, donors_count in rows
        if raised_cents or count  # a campaign's deltas may net to nothing (donations.rollups)
    }


def campaign_snapshot(*, campaign_id: str) -> dict:
    row = Campaign.objects.filter(pk=campaign_id).values(*CAMPAIGN_FIELDS, "organisation_id", "organisation__currency").get()
    rollup = campaign_rollups(organisation=Organisation(id=row["organisation_id"]), campaign_ids=[campaign_id])
    return render_campaign(row, rollup.get(campaign_id), currency=row["organisation__currency"])


def _normalise_email(email: str) -> str:
    local, _, domain = email.lower().partition("@")
    return local.replace(".", "") + "@" + domain


def donor_duplicate_candidates(*, organisation: Organisation, limit: int = 200) -> list[dict]:
    """Likely duplicates: same email ignoring case and dots, or same name and postcode.

    Returns pairs `{donor_ids: (a, b), reason}` with the older donor first.

    SQL narrows the organisation's donors to those sharing a coarse key with another
    (email: lower case, every dot dropped; name: lower case, every space dropped, plus
    the postcode); the exact rules below then pair them. Two donors equal under the
    exact rules are equal under the coarse keys, so the narrowing loses no pair, and
    a queue over 200k donors reads only the few that may be duplicates.
    """
    base = Donor.objects.for_organisation(organisation)
    coarse = base.annotate(
        email_key=Lower(Replace("email", Value("."), Value(""))),
        name_key=Concat(
            Lower(Func(
                Coalesce(NullIf(Concat(Coalesce("first_name", Value("")), Coalesce("last_name", Value(""))), Value("")), "organisation_name"),
                Value(r"\s"), Value(""), Value("g"), function="regexp_replace",
            )),
            Value("|"), Trim("postcode"), output_field=TextField(),
        ),
    )
    shared_email = coarse.filter(email__isnull=False).values("email_key").annotate(n=Count("id")).filter(n__gt=1).values("email_key")
    shared_name = (
        coarse.exclude(postcode__isnull=True).exclude(postcode="")
        .values("name_key").annotate(n=Count("id")).filter(n__gt=1).values("name_key")
    )
    donors = list(
        coarse.filter(Q(email_key__in=shared_email) | Q(name_key__in=shared_name))
        .values("id", "email", "first_name", "last_name", "organisation_name", "postcode", "created_at")
        .order_by("created_at", "id")
    )
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for d in donors:
        if d["email"]:
            groups[("email", _normalise_email(d["email"]))].append(d)
        name = " ".join(p for p in (d["first_name"], d["last_name"]) if p) or d["organisation_name"]
        if name and d["postcode"]:
            groups[("name_postcode", re.sub(r"\s+", " ", name.strip().lower()), d["postcode"].strip())].append(d)
    pairs, seen = [], set()
    for key, members in groups.items():
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                pair = (members[i]["id"], members[j]["id"])
                if pair in seen:
                    continue
                seen.add(pair)
                pairs.append({"donor_ids": pair, "reason": "same email" if key[0] == "email" else "same name and postcode"})
                if len(pairs) >= limit:
                    return pairs
    return pairs


def donor_search(*, organisation: Organisation, q: str, limit: int = 10) -> list[Donor]:
    """Type-ahead over name, organisation name and email (trigram-indexed)."""
    qs = Donor.objects.for_organisation(organisation)
    terms = q.strip().lower().split()[:5]
    if not terms:
        return []
    for term in terms:
        qs = qs.filter(search_text__contains=term)
    return list(qs.order_by("-donations_total_cents", "id")[:limit])


def donor_by_reference(*, organisation: Organisation, reference: str) -> Donor | None:
    """A donor named by id or email, as typed into a batch row."""
    reference = (reference or "").strip()
    if not reference:
        return None
    qs = Donor.objects.for_organisation(organisation)
    return qs.filter(pk=reference).first() or qs.filter(email__iexact=reference).first()


# --- the dashboard's pictures (issue 19) ------------------------------------------------------

def month_starts(start, end) -> list:
    """The first day of every month from `start`'s month to `end`'s."""
    months, month = [], dt.date(start.year, start.month, 1)
    while month <= end:
        months.append(month)
        month = dt.date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return months


def gifts_by_month(*, organisation: Organisation, start, end, recurring_only: bool = False) -> list[dict]:
    """Counted gifts dated in [start, end] per calendar month, from the per-day rollup
    (donations.rollups: exact, a few hundred rows a year): [{month, monetary_cents,
    in_kind_cents, total_cents, gifts}], every month listed (zeros included)."""
    rows = DailyRollup.objects.for_organisation(organisation).filter(day__gte=start, day__lte=end)
    if recurring_only:
        rows = rows.filter(recurring=True)
    grouped = (rows.annotate(month=TruncMonth("day")).values("month", "donation_type")
               .annotate(cents=Sum("counted_cents"), n=Sum("gifts")).order_by())
    months = {m: {"month": m, "monetary_cents": 0, "in_kind_cents": 0, "total_cents": 0, "gifts": 0} for m in month_starts(start, end)}
    for r in grouped:
        entry = months[r["month"]]
        entry["monetary_cents" if r["donation_type"] == "MONETARY" else "in_kind_cents"] += r["cents"] or 0
        entry["total_cents"] += r["cents"] or 0
        entry["gifts"] += r["n"] or 0
    return list(months.values())


def year_by_month(*, organisation: Organisation, start, end) -> dict:
    """The home page's picture: this period's months against the same months a year
    earlier, and each period's totals (the sums of its months), in one rollup query."""
    last_start = dt.date(start.year - 1, start.month, start.day)
    last_end = start - dt.timedelta(days=1)
    months = gifts_by_month(organisation=organisation, start=last_start, end=end)
    this = [m for m in months if m["month"] >= dt.date(start.year, start.month, 1)]
    last = [m for m in months if m["month"] < dt.date(start.year, start.month, 1)]

    def totals(rows):
        return {k: sum(r[k] for r in rows) for k in ("monetary_cents", "in_kind_cents", "total_cents", "gifts")}

    return {"this": this, "last": last, "this_totals": totals(this), "last_totals": totals(last),
            "last_period": (last_start, last_end)}


def campaign_progress(row: dict | None, goal_cents: int | None) -> dict:
    """A campaign's rollup with how far toward its goal it is: whole percent raised
    (None without a goal), over_goal, and where the goal sits on a full bar (percent)."""
    row = dict(row or {"raised_cents": 0, "donations_count": 0, "donors_count": 0})
    raised = row["raised_cents"] or 0
    row["goal_cents"] = goal_cents
    row["percent"] = raised * 100 // goal_cents if goal_cents else None
    row["over_goal"] = bool(goal_cents) and raised > goal_cents
    row["bar_percent"] = min(100, row["percent"]) if row["percent"] is not None else 0
    row["goal_at_percent"] = goal_cents * 100 // raised if row["over_goal"] else 100
    return row


def campaign_gifts_by_week(*, organisation: Organisation, campaign_id: str, weeks: int = 26) -> list[dict]:
    """Counted gifts to a campaign per week (Monday first), the last `weeks` weeks up to
    its latest gift: [{week, raised_cents, gifts}], every week listed (the per-day rollup)."""
    rows = DailyRollup.objects.for_organisation(organisation).filter(campaign_id=campaign_id)
    # The latest day with a counted gift (a day's deltas may net to nothing until compacted).
    latest = (rows.values("day").annotate(n=Sum("gifts")).filter(n__gt=0).order_by("-day")
              .values_list("day", flat=True).first())
    if latest is None:
        return []
    last_week = latest - dt.timedelta(days=latest.weekday())
    first_week = last_week - dt.timedelta(weeks=weeks - 1)
    grouped = (rows.filter(day__gte=first_week).annotate(week=TruncWeek("day")).values("week")
               .annotate(cents=Sum("counted_cents"), n=Sum("gifts")).order_by())
    by_week = {r["week"]: r for r in grouped}
    out = []
    for i in range(weeks):
        week = first_week + dt.timedelta(weeks=i)
        r = by_week.get(week)
        out.append({"week": week, "raised_cents": (r["cents"] or 0) if r else 0, "gifts": r["n"] if r else 0})
    return out


def donor_gifts_by_month(*, organisation: Organisation, donor_id: str, end, months: int = 24) -> list[dict]:
    """A donor's counted gifts per month, the `months` months ending with `end`'s:
    [{month, monetary_cents, in_kind_cents, total_cents, gifts}] (the donor's index)."""
    first = month_starts(dt.date(end.year - months // 12 - 1, 1, 1), end)[-months]
    rows = (Donation.objects.for_organisation(organisation).filter(COUNTED, donor_id=donor_id, donation_date__gte=first,
                                                                   donation_date__lte=end)
            .annotate(month=TruncMonth("donation_date")).values("month", "donation_type")
            .annotate(cents=counted_sum(), n=Count("*")).order_by())
    out = {m: {"month": m, "monetary_cents": 0, "in_kind_cents": 0, "total_cents": 0, "gifts": 0} for m in month_starts(first, end)}
    for r in rows:
        entry = out[r["month"]]
        entry["monetary_cents" if r["donation_type"] == "MONETARY" else "in_kind_cents"] += r["cents"] or 0
        entry["total_cents"] += r["cents"] or 0
        entry["gifts"] += r["n"]
    return list(out.values())


def tag_donor_counts(*, organisation: Organisation, tag_ids: list[str]) -> dict[str, int]:
    """How many donors carry each of the organisation's tags `tag_ids` (one query; a tag no
    donor carries is left out)."""
    if not tag_ids:
        return {}
    return dict(DonorTag.objects.filter(tag__organisation=organisation, tag_id__in=tag_ids).order_by()
                .values("tag_id").annotate(n=Count("id")).values_list("tag_id", "n"))


# --- where a campaign's gifts came from (issue 19) ----------------------------------------------

SOURCE_UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
SOURCES_WORK_MEM = "32MB"


def _source_row(keys: dict, gifts: int, donors: int, cents: int, total: int) -> dict:
    return {**keys, "donations_count": gifts, "donors_count": donors, "raised_cents": cents,
            "share_percent": round(cents * 100 / total, 1) if total else 0.0}


def _source_part(rows: list[dict], limit: int) -> tuple[list[dict], dict | None]:
    """The `limit` groups that raised most (then most gifts, then by key, "(none)" last), and
    what the rest add up to (groups, gifts, money: their donors may overlap, so no donor count)."""
    rows.sort(key=lambda r: (-r["raised_cents"], -r["donations_count"],
                             tuple((v is None, v or "") for k, v in r.items() if k in ("source_code", *SOURCE_UTM_FIELDS))))
    shown, rest = rows[:limit], rows[limit:]
    if not rest:
        return shown, None
    return shown, {"groups": len(rest), "donations_count": sum(r["donations_count"] for r in rest),
                   "raised_cents": sum(r["raised_cents"] for r in rest),
                   "share_percent": round(sum(r["share_percent"] for r in rest), 1)}


def campaign_sources(*, organisation: Organisation, campaign_id: str, limit: int = 50) -> dict:
    """Where a campaign's counted gifts came from: per source code, and per link (the
    UTM source, medium and campaign together), each group's gifts, distinct donors,
    money raised and share of the campaign's total; a gift without a source code (or
    without any UTM value) is in the group whose key is None ("(none)").

    What counts is the campaign total's (compliance.rules: CONFIRMED gifts, each for
    what was kept after partial refunds; voided, refunded, pending and failed gifts
    count nothing), so `raised_cents`, `donations_count` and `donors_count` here equal
    campaign_rollups'. Two statements: one pass over the campaign's gifts (the
    campaign index), GROUP BY GROUPING SETS ((source code), (UTM triple)), the keys and
    donors compared bytewise (COLLATE "C": the groups need equality, not a language's
    order, which made the sorts several times dearer); the totals are the source-code
    groups' sums, and the distinct donors the campaign's CampaignDonor rows (a donor
    counts once however many sources they gave through). Each table keeps its `limit`
    groups that raised most; `*_others` sums the rest (None when nothing was left out)."""
    base = (Donation.objects.for_organisation(organisation).filter(COUNTED, campaign_id=campaign_id).order_by()
            .values(sc=F("source_code"), us=F("utm_source"), um=F("utm_medium"), uc=F("utm_campaign"), d=F("donor_id"),
                    cents=COUNTED_CENTS))
    inner, params = base.query.sql_with_params()
    keys = ", ".join(f'g.{k} COLLATE "C" AS {k}' for k in ("sc", "us", "um", "uc", "d"))
    sql = (f"SELECT GROUPING(k.sc), k.sc, k.us, k.um, k.uc, COUNT(*), COUNT(DISTINCT k.d), COALESCE(SUM(k.cents), 0) "
           f"FROM (SELECT {keys}, g.cents FROM ({inner}) g) k GROUP BY GROUPING SETS ((k.sc), (k.us, k.um, k.uc))")
    with transaction.atomic(), connection.cursor() as cursor:
        # The two sorts of the campaign's gifts (48,000 rows on the bench campaign) in memory:
        # at the default 4 MB they spilled to disk and took twice as long.
        cursor.execute(f"SET LOCAL work_mem = '{SOURCES_WORK_MEM}'")
        cursor.execute(sql, params)
        grouped = cursor.fetchall()
    codes = [(sc, gifts, donors, int(cents)) for no_code, sc, _, _, _, gifts, donors, cents in grouped if not no_code]
    total = sum(cents for *_, cents in codes)
    totals = {"donations_count": sum(gifts for _, gifts, _, _ in codes),
              "donors_count": CampaignDonor.objects.filter(organisation=organisation, campaign_id=campaign_id).count() if codes else 0,
              "raised_cents": total}
    codes = [_source_row({"source_code": sc}, gifts, donors, cents, total) for sc, gifts, donors, cents in codes]
    links = [_source_row({"utm_source": us, "utm_medium": um, "utm_campaign": uc}, gifts, donors, int(cents), total)
             for no_code, _, us, um, uc, gifts, donors, cents in grouped if no_code]
    codes, codes_others = _source_part(codes, limit)
    links, links_others = _source_part(links, limit)
    return {"campaign_id": campaign_id, **totals, "source_codes": codes, "source_codes_others": codes_others,
            "utm": links, "utm_others": links_others}

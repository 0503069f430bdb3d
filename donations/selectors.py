from __future__ import annotations

import re
from collections import defaultdict

from django.db.models import Case, Count, Func, OuterRef, Q, QuerySet, Subquery, TextField, Value, When
from django.db.models.functions import Coalesce, Concat, Lower, NullIf, Replace, Trim

from compliance.rules import COUNTED, counted_sum
from donations.models import Campaign, Donation, Donor
from donations.representations import CAMPAIGN_FIELDS, DONATION_FIELDS, DONOR_FIELDS, render_campaign, render_donation, render_donor
from organisations.models import Organisation


def donors_with_email(queryset: QuerySet, email: str) -> QuerySet:
    """The donors of `queryset` whose email is `email`, ignoring case, found through
    the (lower(email), organisation) unique index rather than a scan of the organisation."""
    return queryset.alias(email_lower=Lower("email")).filter(email__isnull=False, email_lower=Lower(Value(email)))


def donor_snapshot(*, donor_id: str) -> dict:
    return render_donor(Donor.objects.filter(pk=donor_id).values(*DONOR_FIELDS).get())


# The donation's receipt (issue 18), as rendered: its standing receipt, else its latest
# withdrawn one. Read through the `receipts` reverse relation: donations never imports receipts.
RECEIPT_FIELDS = ("receipt_number", "receipt_status")


def with_receipt(queryset: QuerySet) -> QuerySet:
    """`queryset` of donations annotated with RECEIPT_FIELDS (two correlated
    subqueries on the receipts' donation index: no extra query per page)."""
    receipt_model = Donation._meta.get_field("receipts").related_model
    latest = (receipt_model.objects.filter(donation=OuterRef("pk"))
              .order_by(Case(When(status="ISSUED", then=Value(0)), default=Value(1)), "-number"))
    return queryset.annotate(receipt_number=Subquery(latest.values("number")[:1]),
                             receipt_status=Subquery(latest.values("status")[:1]))


def donation_snapshot(*, donation_id: str) -> dict:
    return render_donation(with_receipt(Donation.objects.filter(pk=donation_id)).values(*DONATION_FIELDS, *RECEIPT_FIELDS).get())


def campaign_rollups(*, organisation: Organisation, campaign_ids: list[str]) -> dict[str, dict]:
    """Raised (what counted gifts kept), gifts and distinct donors per campaign, in one query."""
    if not campaign_ids:
        return {}
    rows = (
        Donation.objects.for_organisation(organisation)
        .filter(COUNTED, campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(raised_cents=counted_sum(), donations_count=Count("id"), donors_count=Count("donor_id", distinct=True))
    )
    return {r["campaign_id"]: r for r in rows}


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


def period_totals(*, organisation: Organisation, start, end) -> dict:
    """Counted gifts dated in [start, end]: monetary and in-kind money kept, and how many (one query)."""
    row = Donation.objects.for_organisation(organisation).filter(COUNTED, donation_date__gte=start, donation_date__lte=end).aggregate(
        monetary=counted_sum(Q(donation_type="MONETARY")),
        in_kind=counted_sum(Q(donation_type="IN_KIND")),
        count=Count("*"),  # COUNT(*): the covering index answers the whole query
    )
    return {"monetary_cents": row["monetary"] or 0, "in_kind_cents": row["in_kind"] or 0, "count": row["count"] or 0}


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

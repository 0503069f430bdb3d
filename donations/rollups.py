"""The per-day rollup of counted gifts (donations.models.DailyRollup), kept exact.

`rollup_apply` writes, in the caller's transaction, what a change did to the
rollup: for each gift, its contribution before the change taken away and its
contribution after added, as new rows (deltas). Nothing is locked and nothing is
recounted: two gifts of the same organisation and day commit side by side, and
each delta is committed or rolled back with the gift it describes, so the sum of
a key's rows always equals the ledger. (An earlier version recomputed the day
under an advisory lock per organisation and day: every gift of a day queued
behind the one before it, a recurring charge held the lock through its Stripe
transfer, and the recount grew with the day.)

`rollup_compact` (Celery beat, every few minutes) folds each key's rows into one
(dropping keys that net to nothing) in one statement: a delta committed while it
runs is not in its snapshot and stays for the next run; two compactions never
fold the same row twice (the second's DELETE skips what the first deleted).
Readers always SUM a key's rows, so they are right between compactions too.

`rollup_rebuild` recomputes a whole organisation (or every one): the migration's
backfill and seed_bench's COPY-loaded ledger.

The same call keeps CampaignDonor (a donor's counted gifts per campaign, one row
while any: a campaign's distinct donors are its rows) by the same deltas, under the
lock the services hold on the gifts' donors; a merge recomputes its survivor's rows.

What counts is compliance.rules' (COUNTED, counted_sum, counts, counted_cents):
asked, never restated.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from compliance.rules import COUNTED, counted_cents, counted_sum, counts
from donations.models import CampaignDonor, DailyRollup, Donation
from together.db import execute_batched


def rollup_rows(queryset, model=DailyRollup) -> list:
    """The rollup rows (unsaved `model` instances) of the gifts of `queryset`, grouped in SQL
    (`model`: the migration's historical DailyRollup)."""
    grouped = (
        queryset.filter(COUNTED).order_by()
        .annotate(plan=ExpressionWrapper(Q(recurring_plan_id__isnull=False), output_field=BooleanField()))
        .values("organisation_id", "donation_date", "donation_type", "plan", "campaign_id")
        .annotate(cents=counted_sum(), n=Count("*"))
    )
    return [
        model(organisation_id=r["organisation_id"], day=r["donation_date"], donation_type=r["donation_type"],
                 recurring=r["plan"], campaign_id=r["campaign_id"], counted_cents=r["cents"] or 0, gifts=r["n"])
        for r in grouped
    ]


def campaign_donor_rows(queryset, model=CampaignDonor) -> list:
    """The (campaign, donor) rows (unsaved `model` instances) of the gifts of `queryset`."""
    grouped = (queryset.filter(COUNTED, campaign_id__isnull=False).order_by()
               .values("organisation_id", "campaign_id", "donor_id").annotate(cents=counted_sum(), n=Count("*")))
    return [model(organisation_id=r["organisation_id"], campaign_id=r["campaign_id"], donor_id=r["donor_id"],
                  counted_cents=r["cents"] or 0, gifts=r["n"]) for r in grouped]


def _contribution(donation: Donation | None):
    """(day key, campaign-donor key, counted cents) of one gift's state, or None when it does not count."""
    if donation is None or not counts(donation):
        return None
    day_key = (donation.donation_date, donation.donation_type, donation.recurring_plan_id is not None, donation.campaign_id)
    campaign_key = (donation.campaign_id, donation.donor_id) if donation.campaign_id else None
    return day_key, campaign_key, counted_cents(donation)


def _deltas(changes) -> tuple[dict, dict]:
    days: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    campaigns: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for before, after in changes:
        was, now = _contribution(before), _contribution(after)
        if was == now:
            continue
        for sign, part in ((-1, was), (1, now)):
            if part is None:
                continue
            day_key, campaign_key, cents = part
            days[day_key][0] += sign * cents
            days[day_key][1] += sign
            if campaign_key is not None:
                campaigns[campaign_key][0] += sign * cents
                campaigns[campaign_key][1] += sign
    return ({k: v for k, v in days.items() if v != [0, 0]}, {k: v for k, v in campaigns.items() if v != [0, 0]})


def rollup_apply(*, organisation_id: str, changes: Iterable[tuple[Donation | None, Donation | None]] = (),
                 donor_ids: Iterable[str] = ()) -> None:
    """Add to the organisation's rollup what `changes` did (each a gift's state before
    and after: None before for a new gift), in the caller's transaction, which holds
    the gifts' donors locked: the day deltas as new DailyRollup rows, the campaign
    deltas added to their CampaignDonor rows (a row going to no gift is deleted), in
    one statement (two when a row goes). `donor_ids` (a merge's survivor): recompute
    those donors' CampaignDonor rows from their ledger instead."""
    donor_ids = sorted(set(donor_ids))
    if donor_ids:
        CampaignDonor.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids).delete()
        CampaignDonor.objects.bulk_create(campaign_donor_rows(
            Donation.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids)))
    days, campaigns = _deltas(changes)
    if not days and not campaigns:
        return
    if days:
        rows = sorted(days.items(), key=lambda item: (item[0][0], item[0][1], item[0][2], item[0][3] or ""))
        values = ", ".join(["(%s, %s::date, %s, %s, %s, %s::bigint, %s::integer)"] * len(rows))
        params: list = []
        for (day, kind, recurring, campaign_id), (cents, gifts) in rows:
            params += [organisation_id, day, kind, recurring, campaign_id, cents, gifts]
        execute_batched("INSERT INTO donations_dailyrollup (organisation_id, day, donation_type, recurring, campaign_id, "
                        f"counted_cents, gifts) VALUES {values}", params)
    if campaigns:
        rows = sorted(campaigns.items())
        values = ", ".join(["(%s, %s, %s, %s::bigint, %s::integer)"] * len(rows))
        params = []
        for (campaign_id, donor_id), (cents, gifts) in rows:
            params += [organisation_id, campaign_id, donor_id, cents, gifts]
        execute_batched("INSERT INTO donations_campaigndonor AS cd (organisation_id, campaign_id, donor_id, counted_cents, gifts) "
                        f"VALUES {values} ON CONFLICT (campaign_id, donor_id) DO UPDATE SET "
                        "counted_cents = cd.counted_cents + EXCLUDED.counted_cents, gifts = cd.gifts + EXCLUDED.gifts", params)
    if any(gifts < 0 for _, gifts in campaigns.values()):
        # After the upsert, not beside it: it reads the rows the upsert writes.
        execute_batched("DELETE FROM donations_campaigndonor WHERE organisation_id = %s AND gifts <= 0 AND donor_id = ANY(%s)",
                        [organisation_id, sorted({donor for _, donor in campaigns})], alone=True)


COMPACT_SQL = """
WITH keys AS (
    SELECT organisation_id, day, donation_type, recurring, campaign_id
    FROM donations_dailyrollup
    GROUP BY 1, 2, 3, 4, 5
    HAVING count(*) > 1 OR (sum(gifts) = 0 AND sum(counted_cents) = 0)
    LIMIT %s
), gone AS (
    DELETE FROM donations_dailyrollup r USING keys k
    WHERE r.organisation_id = k.organisation_id AND r.day = k.day AND r.donation_type = k.donation_type
      AND r.recurring = k.recurring AND r.campaign_id IS NOT DISTINCT FROM k.campaign_id
    RETURNING r.organisation_id, r.day, r.donation_type, r.recurring, r.campaign_id, r.counted_cents, r.gifts
)
INSERT INTO donations_dailyrollup (organisation_id, day, donation_type, recurring, campaign_id, counted_cents, gifts)
SELECT organisation_id, day, donation_type, recurring, campaign_id, sum(counted_cents), sum(gifts)
FROM gone GROUP BY 1, 2, 3, 4, 5
HAVING sum(gifts) <> 0 OR sum(counted_cents) <> 0
"""


def rollup_compact(*, keys_per_statement: int = 20_000) -> int:
    """Fold every key's delta rows into one row (keys netting to nothing go); returns
    how many keys were folded. Safe beside writers and beside another compaction."""
    folded = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(COMPACT_SQL, [keys_per_statement])
            done = cursor.rowcount
        folded += max(done, 0)
        if done < keys_per_statement:
            return folded


def rollup_rebuild(*, organisation_id: str | None = None, campaign_donors: bool = True) -> int:
    """Recompute the rollup of one organisation (None: every one) from the whole ledger; returns
    the rows written. For the migration's backfill and seed_bench's COPY-loaded gifts."""
    with transaction.atomic():
        if organisation_id is None:
            DailyRollup.objects.unscoped("migration").delete()
            gifts = Donation.objects.unscoped("migration")
        else:
            DailyRollup.objects.filter(organisation_id=organisation_id).delete()
            gifts = Donation.objects.filter(organisation_id=organisation_id)
        rows = rollup_rows(gifts)
        DailyRollup.objects.bulk_create(rows, batch_size=5000)
        if not campaign_donors:  # the caller knows no gift's donor or campaign changed outside the services
            return len(rows)
        if organisation_id is None:
            CampaignDonor.objects.unscoped("migration").delete()
        else:
            CampaignDonor.objects.filter(organisation_id=organisation_id).delete()
        CampaignDonor.objects.bulk_create(campaign_donor_rows(gifts), batch_size=5000)
    return len(rows)

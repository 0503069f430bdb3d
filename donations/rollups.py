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

The same call keeps CampaignDonor (a donor's counted gifts per campaign: a campaign's
distinct donors are its rows) for the donors a change touched (`donor_ids`), which
the services hold locked: the gift's donor, the one it moved from, a merge's survivor.

What counts is compliance.rules' (COUNTED, counted_sum, counts, counted_cents):
asked, never restated.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from compliance.rules import COUNTED, counted_cents, counted_sum, counts
from donations.models import CampaignDonor, DailyRollup, Donation


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
    """(key, counted cents) of one gift's state, or None when it does not count."""
    if donation is None or not counts(donation):
        return None
    key = (donation.donation_date, donation.donation_type, donation.recurring_plan_id is not None, donation.campaign_id)
    return key, counted_cents(donation)


def rollup_apply(*, organisation_id: str, changes: Iterable[tuple[Donation | None, Donation | None]] = (),
                 donor_ids: Iterable[str] = ()) -> None:
    """Add to the organisation's rollup what `changes` did (each a gift's state before
    and after: None before for a new gift), and recompute the CampaignDonor rows of
    `donor_ids` (whose rows the caller holds locked), in the caller's transaction."""
    donor_ids = sorted(set(donor_ids))
    if donor_ids:
        CampaignDonor.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids).delete()
        CampaignDonor.objects.bulk_create(campaign_donor_rows(
            Donation.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids)))
    deltas: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for before, after in changes:
        was, now = _contribution(before), _contribution(after)
        if was == now:
            continue
        if was is not None:
            deltas[was[0]][0] -= was[1]
            deltas[was[0]][1] -= 1
        if now is not None:
            deltas[now[0]][0] += now[1]
            deltas[now[0]][1] += 1
    rows = [DailyRollup(organisation_id=organisation_id, day=day, donation_type=kind, recurring=recurring,
                        campaign_id=campaign_id, counted_cents=cents, gifts=gifts)
            for (day, kind, recurring, campaign_id), (cents, gifts) in sorted(deltas.items(), key=_order) if cents or gifts]
    if rows:
        DailyRollup.objects.bulk_create(rows)


def _order(item):
    (day, kind, recurring, campaign_id), _ = item
    return day, kind, recurring, campaign_id or ""


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

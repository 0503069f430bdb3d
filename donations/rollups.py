"""The per-day rollup of counted gifts (donations.models.DailyRollup), kept exact.

`rollup_refresh` recomputes an organisation's rollup rows for the days a change
touched, from the ledger, in the caller's transaction: the services call it
wherever a gift is recorded or its money, status or date
changes (donations.services._after_change, and donation_update for the day a gift
moved from). Recomputing (not adding deltas) means a day is right after any change
to it, whatever path changed it. Two transactions touching the same day take an
advisory lock on (organisation, day) first, in date order: the second waits for the
first to commit, and its recomputation (a new snapshot under READ COMMITTED) sees
the first one's gift.

`rollup_rebuild` recomputes a whole organisation (or every one): the migration's
backfill and seed_bench's COPY-loaded ledger.

The same call keeps CampaignDonor (a donor's counted gifts per campaign: a campaign's
distinct donors are its rows) for the donors a change touched (`donor_ids`), which
the services hold locked: the gift's donor, the one it moved from, a merge's survivor.

What counts is compliance.rules' (COUNTED, counted_sum): asked, never restated.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Q

from compliance.rules import COUNTED, counted_sum
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


def rollup_refresh(*, organisation_id: str, days: Iterable[dt.date | None], donor_ids: Iterable[str] = ()) -> None:
    """Recompute the organisation's rollup rows of `days` from its ledger, and the
    CampaignDonor rows of `donor_ids` (whose rows the caller holds locked), in the
    caller's transaction."""
    donor_ids = sorted(set(donor_ids))
    if donor_ids:
        CampaignDonor.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids).delete()
        CampaignDonor.objects.bulk_create(campaign_donor_rows(
            Donation.objects.filter(organisation_id=organisation_id, donor_id__in=donor_ids)))
    days = sorted({d for d in days if d is not None})
    if not days:
        return
    with connection.cursor() as cursor:
        for day in days:  # one order everywhere: no deadlock between two refreshes
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", [f"rollup:{organisation_id}", day.toordinal()])
    DailyRollup.objects.filter(organisation_id=organisation_id, day__in=days).delete()
    DailyRollup.objects.bulk_create(rollup_rows(Donation.objects.filter(organisation_id=organisation_id, donation_date__in=days)))


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

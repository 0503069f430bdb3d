"""The compliance arithmetic, once. Every other module asks here:

- which period a date falls in (`financial_year_of`, `calendar_year_of`, and a
  rule's own aggregation period, `rule_period`);
- which rules apply to a gift of a jurisdiction on a date (`rules_in_force`,
  oldest first, then by id: a deterministic order; `threshold_rule_in_force`
  picks the first that carries a threshold);
- what counts (`COUNTED`, `COUNTED_CENTS`, `counted_cents`): a CONFIRMED gift
  counts what was kept, `amount_cents - refunded_cents` (a partial card refund
  keeps the gift CONFIRMED); PENDING, FAILED, REFUNDED and VOIDED gifts count
  nothing;
- how much room is left under a cap (`cap_rooms`, `cap_room`, `remaining_cents`)
  and how near the cap a total is (`alert_level`);
- whether a total passes a disclosure threshold (`passes_threshold`).

It only reads: the services (which lock, then decide), the selectors, the
dashboard, the reports and the payment paths call it. It imports models only,
so any module may import it without a cycle.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import F, Q, Sum

from compliance.models import AlertLevel, Comparator, ComplianceSettings, PeriodKind, RegimeRule
from donations.models import Donation, Status

# --- periods --------------------------------------------------------------------------------

FINANCIAL_YEAR_FIRST_MONTH = 7  # the Australian financial year runs 1 July – 30 June


def financial_year_starting(year: int) -> tuple[dt.date, dt.date]:
    """The financial year that begins on 1 July of `year` (`2025` is FY 2025-26)."""
    return dt.date(year, FINANCIAL_YEAR_FIRST_MONTH, 1), dt.date(year + 1, FINANCIAL_YEAR_FIRST_MONTH, 1) - dt.timedelta(days=1)


def financial_year_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The financial year (first and last day) containing `day`."""
    return financial_year_starting(day.year if day.month >= FINANCIAL_YEAR_FIRST_MONTH else day.year - 1)


def calendar_year_of(day: dt.date) -> tuple[dt.date, dt.date]:
    return dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)


def rule_period(rule: RegimeRule, day: dt.date) -> tuple[dt.date, dt.date]:
    """The rule's aggregation period containing `day`, clipped to the rule's effective range
    (the federal FY 2026-27 ends where its rule ends)."""
    if rule.period_kind == PeriodKind.CALENDAR_YEAR:
        start, end = calendar_year_of(day)
    elif rule.period_kind == PeriodKind.FINANCIAL_YEAR:
        start, end = financial_year_of(day)
    else:
        start, end = rule.period_start, rule.period_end
    start = max(start, rule.effective_from)
    if rule.effective_to is not None:
        end = min(end, rule.effective_to)
    return start, end


# --- which rule -----------------------------------------------------------------------------

# Rules in force together are taken oldest first, then by id: the same order everywhere.
RULE_ORDER = ("effective_from", "id")


def applies_on(rule: RegimeRule, day: dt.date) -> bool:
    """Whether `rule` is in force on `day` (effective_to is inclusive; blank is open-ended)."""
    return rule.effective_from <= day and (rule.effective_to is None or day <= rule.effective_to)


# A fingerprint of the whole rule table (every row's text): read in the same statement
# as the organisation's settings (compliance.services), it tells each process whether
# the rules it holds are still the law's, so a rule added or edited anywhere (admin,
# data migration, raw SQL) is seen by the next gift without a query for the rules.
RULES_STAMP_SQL = "SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r.id), '')) FROM compliance_regimerule r"
_rules_held: tuple[str, dict[str, list[RegimeRule]]] | None = None


def rules_by_jurisdiction(stamp: str | None = None) -> dict[str, list[RegimeRule]]:
    """Every rule, grouped by jurisdiction, each group in RULE_ORDER (for callers
    that place many gifts at once; filter each with `applies_on`). With `stamp`
    (RULES_STAMP_SQL's value, read in the caller's transaction), the rules this
    process holds under that stamp, read only when the table changed. Shared
    between threads: read-only."""
    global _rules_held
    held = _rules_held
    if stamp is not None and held is not None and held[0] == stamp:
        return held[1]
    grouped: dict[str, list[RegimeRule]] = defaultdict(list)
    current = None
    for rule in RegimeRule.objects.extra(select={"table_stamp": f"({RULES_STAMP_SQL})"}).order_by("jurisdiction", *RULE_ORDER):
        grouped[rule.jurisdiction].append(rule)
        current = rule.table_stamp
    grouped = dict(grouped)
    if current is not None:
        _rules_held = (current, grouped)
    return grouped


def rules_in_force(jurisdiction: str, day: dt.date, by_jurisdiction: dict | None = None) -> list[RegimeRule]:
    """The rules applying to a gift of `jurisdiction` dated `day`, in RULE_ORDER
    (from `by_jurisdiction`, rules_by_jurisdiction's answer, when given)."""
    if by_jurisdiction is not None:
        return [r for r in by_jurisdiction.get(jurisdiction, ()) if applies_on(r, day)]
    return [r for r in RegimeRule.objects.filter(jurisdiction=jurisdiction).order_by(*RULE_ORDER) if applies_on(r, day)]


def threshold_rule_in_force(jurisdiction: str, day: dt.date, by_jurisdiction: dict | None = None) -> RegimeRule | None:
    """The disclosure rule for `jurisdiction` on `day`: the first rule in force with a threshold
    (from `by_jurisdiction`, rules_by_jurisdiction's answer, when given)."""
    return next((r for r in rules_in_force(jurisdiction, day, by_jurisdiction) if r.threshold_cents is not None), None)


def passes_threshold(rule: RegimeRule, total_cents: int) -> bool:
    """Whether a donor's counted total in the rule's period must be disclosed
    (MORE_THAN or AT_OR_ABOVE as the rule says; a rule without a threshold: never)."""
    if rule.threshold_cents is None:
        return False
    if rule.threshold_comparator == Comparator.AT_OR_ABOVE:
        return total_cents >= rule.threshold_cents
    return total_cents > rule.threshold_cents


# --- what counts ----------------------------------------------------------------------------

# The gifts that count toward totals, caps and thresholds. PENDING (payment
# unfinished), FAILED, REFUNDED (returned in full) and VOIDED count nothing.
COUNTED = Q(status=Status.CONFIRMED)
# What a counted gift counts: the money kept after partial refunds. Every Sum of
# counted money is Sum(COUNTED_CENTS) (the covering index donation_org_date holds
# both columns).
COUNTED_CENTS = F("amount_cents") - F("refunded_cents")


def counts(donation: Donation) -> bool:
    """COUNTED, for a gift in memory (e.g. its would-be state before it is saved)."""
    return donation.status == Status.CONFIRMED


def counted_cents(donation: Donation) -> int:
    """COUNTED_CENTS, for a gift in memory: what it adds to its donor's totals."""
    return donation.amount_cents - (donation.refunded_cents or 0) if counts(donation) else 0


def counted_sum(condition: Q | None = None) -> Sum:
    """Sum(COUNTED_CENTS), optionally of the rows matching `condition` (a FILTER clause);
    apply COUNTED to the query set."""
    return Sum(COUNTED_CENTS, filter=condition)


def counted_total(*, donor_id: str, jurisdiction: str, start: dt.date, end: dt.date, exclude_id: str | None = None) -> int:
    """The donor's counted total of gifts in `jurisdiction` dated in [start, end], without gift `exclude_id`."""
    queryset = Donation.objects.filter(COUNTED, donor_id=donor_id, jurisdiction=jurisdiction,
                                       donation_date__gte=start, donation_date__lte=end)
    if exclude_id:
        queryset = queryset.exclude(pk=exclude_id)
    return queryset.aggregate(total=counted_sum())["total"] or 0


def ledger_total(ledger, *, jurisdiction: str, start: dt.date, end: dt.date, exclude_id: str | None = None) -> int:
    """`counted_total` over a donor's counted gifts already read (compliance.services.DonorLedger's
    `gifts`: id, jurisdiction, date, counted cents), under the donor's lock."""
    return sum(g.counted for g in ledger if g.jurisdiction == jurisdiction and start <= g.day <= end and g.id != exclude_id)


# --- room under a cap -----------------------------------------------------------------------

def remaining_cents(cap_cents: int, total_cents: int) -> int:
    return max(0, cap_cents - total_cents)


def room(rule: RegimeRule, day: dt.date, total_cents: int) -> dict:
    """A cap's room for a gift dated `day` when the donor's counted total in the rule's
    period is `total_cents`: {cap, total, remaining, rule, period}. For callers that sum
    many donors' totals at once (an import's dry run); `cap_rooms` sums one donor's."""
    return {"cap": rule.cap_cents, "total": total_cents, "remaining": remaining_cents(rule.cap_cents, total_cents),
            "rule": rule, "period": rule_period(rule, day)}


def cap_rooms(*, donor_id: str | None, jurisdiction: str, day: dt.date, exclude_id: str | None = None,
              ledger=None, by_jurisdiction: dict | None = None) -> list[dict]:
    """Per cap in force on `day` (RULE_ORDER): `{cap, total, remaining, rule, period}`, the
    donor's counted total in that cap's period (without gift `exclude_id`). `donor_id`
    None is a donor not in the books yet: nothing given, the whole cap left."""
    rooms = []
    for rule in rules_in_force(jurisdiction, day, by_jurisdiction):
        if rule.cap_cents is None:
            continue
        start, end = rule_period(rule, day)
        if donor_id is None:
            total = 0
        elif ledger is not None:  # the donor's counted gifts, read under its lock
            total = ledger_total(ledger, jurisdiction=jurisdiction, start=start, end=end, exclude_id=exclude_id)
        else:
            total = counted_total(donor_id=donor_id, jurisdiction=jurisdiction, start=start, end=end, exclude_id=exclude_id)
        rooms.append(room(rule, day, total))
    return rooms


def breaks(room: dict, adding_cents: int) -> bool:
    """Whether adding `adding_cents` to the room's total takes the donor past its cap."""
    return room["total"] + adding_cents > room["cap"]


def tightest(rooms: list[dict]) -> dict | None:
    """The room with the least left (the first of equals)."""
    return min(rooms, key=lambda room: room["remaining"], default=None)


def cap_room(*, donor_id: str | None, jurisdiction: str, day: dt.date, exclude_id: str | None = None,
             by_jurisdiction: dict | None = None) -> dict | None:
    """The tightest cap applying to a gift of this donor (None: one not in the books yet)
    on this day: {cap, total, remaining, rule, period}; None when no cap applies."""
    return tightest(cap_rooms(donor_id=donor_id, jurisdiction=jurisdiction, day=day, exclude_id=exclude_id,
                              by_jurisdiction=by_jurisdiction))


def alert_level(total_cents: int, cap_cents: int | None, settings_row: ComplianceSettings) -> str:
    """How near its cap a total is, by the organisation's alert percentages."""
    if not cap_cents:
        return AlertLevel.NONE
    percent = total_cents * 100 / cap_cents
    if percent >= settings_row.alert_critical_percent:
        return AlertLevel.CRITICAL
    if percent >= settings_row.alert_red_percent:
        return AlertLevel.RED
    if percent >= settings_row.alert_amber_percent:
        return AlertLevel.AMBER
    return AlertLevel.NONE

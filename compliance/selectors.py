from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When
from django.db.models.functions import Cast, NullIf
from django.utils import timezone

from compliance import rules
from compliance.models import AlertLevel, ComplianceSettings, Jurisdiction
from compliance.services import compliance_settings_get
from donations.models import Donation, Donor
from organisations.models import Organisation


def donor_compliance(*, organisation: Organisation, donor: Donor, as_of: dt.date) -> list[dict]:
    """Per jurisdiction with a rule in force on `as_of`: the period, total, threshold,
    cap and room left, computed from the ledger (not from stored aggregates).

    The period and total are those of the disclosure rule (else of the cap); the cap
    columns are the tightest cap's, over its own period."""
    settings_row: ComplianceSettings = compliance_settings_get(organisation=organisation)
    jurisdictions = set(
        Donation.objects.filter(rules.COUNTED, donor=donor).exclude(jurisdiction__isnull=True)
        .values_list("jurisdiction", flat=True).distinct()
    )
    jurisdictions.add(settings_row.default_jurisdiction)
    by_jurisdiction = rules.rules_by_jurisdiction()  # the rules read once, not twice per jurisdiction
    out = []
    for jurisdiction in [j for j in Jurisdiction.values if j in jurisdictions]:
        threshold_rule = rules.threshold_rule_in_force(jurisdiction, as_of, by_jurisdiction)
        room = rules.cap_room(donor_id=donor.id, jurisdiction=jurisdiction, day=as_of, by_jurisdiction=by_jurisdiction)
        main = threshold_rule or (room["rule"] if room else None)
        if main is None:
            out.append(_entry(jurisdiction, None, None, None, None, settings_row))
            continue
        if threshold_rule is None:
            period, total = room["period"], room["total"]
        else:
            period = rules.rule_period(threshold_rule, as_of)
            total = rules.counted_total(donor_id=donor.id, jurisdiction=jurisdiction, start=period[0], end=period[1])
        out.append(_entry(jurisdiction, main, threshold_rule, room, (period, total), settings_row))
    return out


def _entry(jurisdiction, main, threshold_rule, room, period_total, settings_row) -> dict:
    if main is None:
        return {
            "jurisdiction": jurisdiction, "period_kind": None, "period_start": None, "period_end": None, "total_cents": 0,
            "threshold_cents": None, "threshold_comparator": None, "above_threshold": False, "cap_cents": None,
            "cap_period_start": None, "cap_period_end": None, "cap_total_cents": None, "cap_remaining_cents": None,
            "alert_level": AlertLevel.NONE, "regime": None,
        }
    (start, end), total = period_total
    return {
        "jurisdiction": jurisdiction,
        "period_kind": main.period_kind,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "total_cents": total,
        "threshold_cents": threshold_rule.threshold_cents if threshold_rule else None,
        "threshold_comparator": threshold_rule.threshold_comparator if threshold_rule else None,
        "above_threshold": bool(threshold_rule and rules.passes_threshold(threshold_rule, total)),
        "cap_cents": room["cap"] if room else None,
        "cap_period_start": room["period"][0].isoformat() if room else None,
        "cap_period_end": room["period"][1].isoformat() if room else None,
        "cap_total_cents": room["total"] if room else None,
        "cap_remaining_cents": room["remaining"] if room else None,
        "alert_level": rules.alert_level(room["total"], room["cap"], settings_row) if room else AlertLevel.NONE,
        "regime": main.name,
    }


def jurisdiction_preview(*, organisation: Organisation, code: str | None) -> str:
    """The jurisdiction a gift with this code would count under (creates nothing)."""
    from compliance.models import RevenueCode

    if code:
        mapped = RevenueCode.objects.for_organisation(organisation).filter(code_lower=code.strip().lower()).values_list("jurisdiction", flat=True).first()
        if mapped:
            return mapped
    return compliance_settings_get(organisation=organisation).default_jurisdiction


# Most urgent first: the alert level, then how much of the cap is used, then the period that ends first.
_LEVEL_RANK = Case(When(alert_level=AlertLevel.CRITICAL, then=Value(0)), When(alert_level=AlertLevel.RED, then=Value(1)),
                   default=Value(2))


def _near_cap(organisation: Organisation):
    from compliance.models import DonorAggregate

    return (DonorAggregate.objects.for_organisation(organisation).exclude(alert_level=AlertLevel.NONE)
            .select_related("donor", "rule")
            .annotate(level_rank=_LEVEL_RANK,
                      used_per_mille=F("total_cents") * 1000 / NullIf(F("rule__cap_cents"), 0)))


def near_cap_alerts(*, organisation: Organisation, today: dt.date, limit: int = 20) -> list:
    """Donors near a cap in periods still open on `today` (period_end ≥ today), most urgent
    first: CRITICAL, RED, AMBER; then the share of the cap used; then the period ending first.
    Each carries `used_per_mille` (of its rule's cap)."""
    return list(_near_cap(organisation).filter(period_end__gte=today)
                .order_by("level_rank", F("used_per_mille").desc(nulls_last=True), "period_end", "id")[:limit])


def near_cap_history(*, organisation: Organisation, today: dt.date, limit: int = 200) -> list:
    """Alerts of periods that ended before `today`, the latest periods first."""
    return list(_near_cap(organisation).filter(period_end__lt=today)
                .order_by("-period_end", "level_rank", F("used_per_mille").desc(nulls_last=True), "id")[:limit])


def compliance_alerts(*, organisation: Organisation, limit: int = 20, today: dt.date | None = None) -> dict:
    """What the home page flags: donors near a cap in open periods (most urgent first;
    past periods are near_cap_history's), open obligations by due date, breaches."""
    from compliance.models import ComplianceBreach, DisclosureObligation, ObligationStatus

    today = today or timezone.localdate()
    return {
        "near_cap": near_cap_alerts(organisation=organisation, today=today, limit=limit),
        "past_near_cap": _near_cap(organisation).filter(period_end__lt=today).exists(),
        "obligations": list(
            DisclosureObligation.objects.for_organisation(organisation).filter(status=ObligationStatus.OPEN)
            .select_related("donor").order_by("due_date")[:limit]
        ),
        "breaches": list(ComplianceBreach.objects.for_organisation(organisation).select_related("donor").order_by("-created_at")[:limit]),
    }


def revenue_code_suggestions(*, organisation: Organisation, limit: int = 500) -> list[str]:
    from compliance.models import RevenueCode, RevenueCodeStatus

    return list(
        RevenueCode.objects.for_organisation(organisation).filter(status=RevenueCodeStatus.ACTIVE).order_by("code").values_list("code", flat=True)[:limit]
    )


def obligations_timeline(*, organisation: Organisation, today: dt.date, before_days: int = 90, after_days: int = 365,
                         limit: int = 200) -> dict:
    """Disclosure obligations due from `before_days` ago to `after_days` ahead, by due date,
    for the compliance page's timeline: {start, end, items}; each item has `tone`: overdue
    (OPEN, due before today), open, lodged, cancelled."""
    from compliance.models import DisclosureObligation, ObligationStatus

    start, end = today - dt.timedelta(days=before_days), today + dt.timedelta(days=after_days)
    items = list(DisclosureObligation.objects.for_organisation(organisation).filter(due_date__gte=start, due_date__lte=end)
                 .select_related("donor").order_by("due_date", "id")[:limit])
    for o in items:
        o.tone = ("overdue" if o.due_date < today else "open") if o.status == ObligationStatus.OPEN else o.status.lower()
    return {"start": start, "end": end, "items": items}


def _main_rules(today: dt.date) -> list[int]:
    """Per jurisdiction, the rule whose aggregates the summary reads (a donor has one per
    rule): the disclosure rule in force on `today`, else the first cap. The rules come
    from this process's copy while the rule table's stamp is unchanged (one small query)."""
    with connection.cursor() as cursor:
        cursor.execute(rules.RULES_STAMP_SQL)
        stamp = cursor.fetchone()[0]
    out = []
    for in_force in ([r for r in group if rules.applies_on(r, today)] for group in rules.rules_by_jurisdiction(stamp).values()):
        main = next((r for r in in_force if r.threshold_cents is not None), None) or next((r for r in in_force if r.cap_cents), None)
        if main is not None:
            out.append(main.id)
    return out


SUMMARY_FIGURES = ("donors", "total_cents", "near_cap", "open", "overdue", "breaches")


def jurisdiction_summary(*, organisation: Organisation, today: dt.date) -> list[dict]:
    """Per jurisdiction, for periods open on `today`: donors with a total, counted cents,
    donors near a cap; open and overdue obligations; breaches recorded. One statement
    (the four grouped reads as one UNION ALL, each part a row per jurisdiction with its
    own figures and zeros for the others), after the rules' stamp."""
    from compliance.models import ComplianceBreach, DisclosureObligation, DonorAggregate, ObligationStatus

    zero = Value(0, output_field=BigIntegerField())

    def part(queryset, **figures):
        columns = {name: figures.get(name, zero) for name in SUMMARY_FIGURES}
        return queryset.values("jurisdiction").annotate(**columns).order_by().values_list("jurisdiction", *SUMMARY_FIGURES)

    open_now = DonorAggregate.objects.for_organisation(organisation).filter(period_start__lte=today, period_end__gte=today)
    main_rules = _main_rules(today)
    parts = [
        part(open_now.exclude(alert_level=AlertLevel.NONE), near_cap=Count("donor_id", distinct=True)),
        part(DisclosureObligation.objects.for_organisation(organisation).filter(status=ObligationStatus.OPEN),
             open=Count("id"), overdue=Count("id", filter=Q(due_date__lt=today))),
        part(ComplianceBreach.objects.for_organisation(organisation), breaches=Count("id")),
    ]
    if main_rules:
        parts.insert(0, part(open_now.filter(rule_id__in=main_rules, total_cents__gt=0),
                             donors=Count("donor_id", distinct=True),
                             total_cents=Cast(Sum("total_cents"), output_field=BigIntegerField())))
    out: dict[str, dict] = {}
    for jurisdiction, *figures in parts[0].union(*parts[1:], all=True):
        entry = out.setdefault(jurisdiction, {"jurisdiction": jurisdiction, **{name: 0 for name in SUMMARY_FIGURES}})
        for name, value in zip(SUMMARY_FIGURES, figures):
            entry[name] += int(value or 0)
    order = {j: i for i, j in enumerate(Jurisdiction.values)}
    return sorted(out.values(), key=lambda e: order.get(e["jurisdiction"], 99))

from __future__ import annotations

import datetime as dt

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
    out = []
    for jurisdiction in [j for j in Jurisdiction.values if j in jurisdictions]:
        threshold_rule = rules.threshold_rule_in_force(jurisdiction, as_of)
        room = rules.cap_room(donor_id=donor.id, jurisdiction=jurisdiction, day=as_of)
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


def compliance_alerts(*, organisation: Organisation, limit: int = 20) -> dict:
    """What the home page flags: donors near a cap, open obligations by due date, breaches."""
    from compliance.models import ComplianceBreach, DisclosureObligation, DonorAggregate, ObligationStatus

    return {
        "near_cap": list(
            DonorAggregate.objects.for_organisation(organisation).exclude(alert_level=AlertLevel.NONE)
            .select_related("donor", "rule").order_by("-total_cents")[:limit]
        ),
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

from __future__ import annotations

import datetime as dt

from compliance.models import AlertLevel, ComplianceSettings, Jurisdiction, RegimeRule
from compliance.services import _alert_level, _counted_total, compliance_settings_get
from donations.models import Donation, Donor, Status
from organisations.models import Organisation


def donor_compliance(*, organisation: Organisation, donor: Donor, as_of: dt.date) -> list[dict]:
    """Per jurisdiction with a rule in force on `as_of`: the period, total, threshold,
    cap and room left, computed from the ledger (not from stored aggregates)."""
    settings_row: ComplianceSettings = compliance_settings_get(organisation=organisation)
    jurisdictions = set(
        Donation.objects.filter(donor=donor, status=Status.CONFIRMED).exclude(jurisdiction__isnull=True)
        .values_list("jurisdiction", flat=True).distinct()
    )
    jurisdictions.add(settings_row.default_jurisdiction)
    out = []
    for jurisdiction in [j for j in Jurisdiction.values if j in jurisdictions]:
        rules = [r for r in RegimeRule.objects.filter(jurisdiction=jurisdiction) if r.applies_on(as_of)]
        if not rules:
            out.append(_entry(jurisdiction, None, None, None, None, None, None, settings_row))
            continue
        threshold_rule = next((r for r in rules if r.threshold_cents is not None), None)
        cap_rule = next((r for r in rules if r.cap_cents is not None), None)
        main = threshold_rule or cap_rule
        start, end = main.period_for(as_of)
        total = _counted_total(donor_id=donor.id, jurisdiction=jurisdiction, start=start, end=end, exclude_id=None)
        cap_total = total
        cap_period = None
        if cap_rule is not None and cap_rule is not main:
            cap_start, cap_end = cap_rule.period_for(as_of)
            cap_total = _counted_total(donor_id=donor.id, jurisdiction=jurisdiction, start=cap_start, end=cap_end, exclude_id=None)
            cap_period = (cap_start, cap_end)
        out.append(_entry(jurisdiction, main, threshold_rule, cap_rule, (start, end), total, cap_total, settings_row, cap_period))
    return out


def _entry(jurisdiction, main, threshold_rule, cap_rule, period, total, cap_total, settings_row, cap_period=None) -> dict:
    if main is None:
        return {
            "jurisdiction": jurisdiction, "period_kind": None, "period_start": None, "period_end": None, "total_cents": 0,
            "threshold_cents": None, "threshold_comparator": None, "above_threshold": False, "cap_cents": None,
            "cap_period_start": None, "cap_period_end": None, "cap_total_cents": None, "cap_remaining_cents": None,
            "alert_level": AlertLevel.NONE, "regime": None,
        }
    cap = cap_rule.cap_cents if cap_rule else None
    return {
        "jurisdiction": jurisdiction,
        "period_kind": main.period_kind,
        "period_start": period[0].isoformat(),
        "period_end": period[1].isoformat(),
        "total_cents": total,
        "threshold_cents": threshold_rule.threshold_cents if threshold_rule else None,
        "threshold_comparator": threshold_rule.threshold_comparator if threshold_rule else None,
        "above_threshold": bool(threshold_rule and threshold_rule.passes_threshold(total)),
        "cap_cents": cap,
        "cap_period_start": (cap_period or period)[0].isoformat() if cap_rule else None,
        "cap_period_end": (cap_period or period)[1].isoformat() if cap_rule else None,
        "cap_total_cents": cap_total if cap_rule else None,
        "cap_remaining_cents": max(0, cap - cap_total) if cap is not None else None,
        "alert_level": _alert_level(cap_total, cap, settings_row) if cap is not None else AlertLevel.NONE,
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

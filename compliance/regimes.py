"""The law's numbers (reference compliance.md §2 and §6), as regime rows.

Loaded by a data migration and by `manage.py compliance_load_regimes`. The
federal reform's commencement is `settings.FEDERAL_REFORM_COMMENCEMENT`
(1 January 2027 per Together's pages; the Act says 1 July 2026): one setting
moves the cut-over, the truncation of FY 2026-27 and the first calendar period.

Only figures the reference states are loaded. Where it gives none (Queensland,
WA, Tasmania, NT, NSW FY 2023-24) no rule exists and nothing is enforced there;
superusers add rows in the admin as figures are confirmed.
"""
from __future__ import annotations

import datetime as dt

D = dt.date


def default_rules(commencement: dt.date) -> list[dict]:
    last_fy_day = commencement - dt.timedelta(days=1)
    fed_fy = dict(jurisdiction="FEDERAL", period_kind="FINANCIAL_YEAR", threshold_comparator="MORE_THAN",
                  deadline_rule="ANNUAL_RETURN", deadline_month=10, deadline_day=31,
                  source="Commonwealth Electoral Act 1918 Part XX; AEC threshold history")
    rules = [
        dict(fed_fy, name="Federal FY 2023-24", effective_from=D(2023, 7, 1), effective_to=D(2024, 6, 30), threshold_cents=1_630_000),
        dict(fed_fy, name="Federal FY 2024-25", effective_from=D(2024, 7, 1), effective_to=D(2025, 6, 30), threshold_cents=1_690_000),
        dict(fed_fy, name="Federal FY 2025-26", effective_from=D(2025, 7, 1), effective_to=D(2026, 6, 30), threshold_cents=1_730_000),
        dict(fed_fy, name="Federal FY 2026-27 (truncated at the reform)", effective_from=D(2026, 7, 1), effective_to=last_fy_day,
             threshold_cents=1_790_000),
        dict(jurisdiction="FEDERAL", name="Federal calendar-year regime (reform)", effective_from=commencement, effective_to=None,
             period_kind="CALENDAR_YEAR", threshold_cents=500_000, threshold_comparator="MORE_THAN", cap_cents=5_000_000,
             deadline_rule="NEXT_MONTH_DAY", deadline_day=21, election_deadlines=True,
             source="Electoral Legislation Amendment (Electoral Reform) Act 2025; cap per donor per recipient per calendar year"),
        dict(jurisdiction="NSW", name="NSW FY 2022-23 (party cap $7,000)", effective_from=D(2022, 7, 1), effective_to=D(2023, 6, 30),
             period_kind="FINANCIAL_YEAR", threshold_cents=100_000, threshold_comparator="AT_OR_ABOVE", cap_cents=700_000,
             deadline_rule="ANNUAL_RETURN", deadline_month=10, deadline_day=31, source="NSWEC"),
        dict(jurisdiction="NSW", name="NSW from FY 2024-25 (party cap $7,900)", effective_from=D(2024, 7, 1), effective_to=None,
             period_kind="FINANCIAL_YEAR", threshold_cents=100_000, threshold_comparator="AT_OR_ABOVE", cap_cents=790_000,
             deadline_rule="ANNUAL_RETURN", deadline_month=10, deadline_day=31, source="NSWEC"),
        dict(jurisdiction="VIC", name="Victoria disclosure (FY, within 21 days)", effective_from=D(2024, 7, 1), effective_to=None,
             period_kind="FINANCIAL_YEAR", threshold_cents=117_000, threshold_comparator="AT_OR_ABOVE",
             deadline_rule="WITHIN_DAYS", deadline_days=21, source="VEC"),
        dict(jurisdiction="VIC", name="Victoria cap, 2022-2026 election period", effective_from=D(2022, 11, 27), effective_to=D(2026, 11, 28),
             period_kind="EXPLICIT_RANGE", period_start=D(2022, 11, 27), period_end=D(2026, 11, 28), cap_cents=467_000,
             deadline_rule="WITHIN_DAYS", deadline_days=21, source="VEC (cap ≈ 2024-25 figure)"),
        dict(jurisdiction="VIC", name="Victoria cap, 2026-2030 election period", effective_from=D(2026, 11, 29), effective_to=D(2030, 11, 30),
             period_kind="EXPLICIT_RANGE", period_start=D(2026, 11, 29), period_end=D(2030, 11, 30), cap_cents=467_000,
             deadline_rule="WITHIN_DAYS", deadline_days=21, source="VEC (latest known figure until indexation is published)"),
        dict(jurisdiction="ACT", name="ACT gift returns (within 7 days)", effective_from=D(2024, 7, 1), effective_to=None,
             period_kind="FINANCIAL_YEAR", threshold_cents=100_000, threshold_comparator="AT_OR_ABOVE",
             deadline_rule="WITHIN_DAYS", deadline_days=7, source="Elections ACT"),
        dict(jurisdiction="SA", name="South Australia cap (FY)", effective_from=D(2024, 7, 1), effective_to=None,
             period_kind="FINANCIAL_YEAR", cap_cents=500_000, deadline_rule="ANNUAL_RETURN", deadline_month=10, deadline_day=31,
             source="ECSA"),
    ]
    return rules


def load_default_rules(RegimeRule, commencement: dt.date, *, replace: bool = False) -> int:
    if replace:
        RegimeRule.objects.all().delete()
    created = 0
    for values in default_rules(commencement):
        _, was_created = RegimeRule.objects.get_or_create(
            jurisdiction=values["jurisdiction"], name=values["name"], defaults=values
        )
        created += was_created
    return created

from __future__ import annotations

from together.api.renderers import iso_date, iso_timestamp

REVENUE_CODE_FIELDS = ("id", "code", "jurisdiction", "description", "status", "reviewed", "created_at", "updated_at")


def render_revenue_code(row: dict, last_recompute: dict | None = None) -> dict:
    out = {k: row[k] for k in REVENUE_CODE_FIELDS}
    out["object"] = "revenue_code"
    out["created_at"] = iso_timestamp(row["created_at"])
    out["updated_at"] = iso_timestamp(row["updated_at"])
    out["last_recompute"] = last_recompute
    return out


RECOMPUTE_FIELDS = (
    "id", "reason", "from_jurisdiction", "to_jurisdiction", "status", "donations_affected", "donors_affected",
    "obligations_created", "obligations_cancelled", "breaches_created", "created_at", "completed_at",
)


def render_recompute(row: dict) -> dict:
    out = {k: row[k] for k in RECOMPUTE_FIELDS}
    out["object"] = "recompute"
    out["created_at"] = iso_timestamp(row["created_at"])
    out["completed_at"] = iso_timestamp(row["completed_at"])
    return out


OBLIGATION_FIELDS = (
    "id", "donor_id", "jurisdiction", "period_start", "period_end", "threshold_cents", "aggregate_cents",
    "crossed_on", "crossing_donation_id", "due_date", "deadline_basis", "status", "lodged_reference", "lodged_date",
    "cancelled_reason", "cancelled_at", "created_at", "updated_at",
)


def render_obligation(row: dict) -> dict:
    out = {k: row[k] for k in OBLIGATION_FIELDS}
    out["object"] = "disclosure_obligation"
    out["currency"] = "AUD"
    for key in ("period_start", "period_end", "crossed_on", "due_date", "lodged_date"):
        out[key] = iso_date(row[key])
    for key in ("cancelled_at", "created_at", "updated_at"):
        out[key] = iso_timestamp(row[key])
    return out


BREACH_FIELDS = (
    "id", "donor_id", "jurisdiction", "period_start", "period_end", "cap_cents", "aggregate_cents", "excess_cents",
    "reason", "created_at", "updated_at",
)


def render_breach(row: dict) -> dict:
    out = {k: row[k] for k in BREACH_FIELDS}
    out["object"] = "compliance_breach"
    out["currency"] = "AUD"
    out["period_start"] = iso_date(row["period_start"])
    out["period_end"] = iso_date(row["period_end"])
    out["created_at"] = iso_timestamp(row["created_at"])
    out["updated_at"] = iso_timestamp(row["updated_at"])
    return out


ELECTION_FIELDS = ("id", "election_type", "jurisdiction", "name", "writ_date", "polling_date", "created_at", "updated_at")


def render_election(row: dict) -> dict:
    out = {k: row[k] for k in ELECTION_FIELDS}
    out["object"] = "election_period"
    out["writ_date"] = iso_date(row["writ_date"])
    out["polling_date"] = iso_date(row["polling_date"])
    out["created_at"] = iso_timestamp(row["created_at"])
    out["updated_at"] = iso_timestamp(row["updated_at"])
    return out


SETTINGS_FIELDS = ("default_jurisdiction", "alert_amber_percent", "alert_red_percent", "alert_critical_percent", "entity_type", "updated_at")


def render_settings(row: dict) -> dict:
    out = {k: row[k] for k in SETTINGS_FIELDS}
    out["object"] = "compliance_settings"
    out["updated_at"] = iso_timestamp(row["updated_at"])
    return out

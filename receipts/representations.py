"""How a receipt looks to the outside world (events, API)."""
from __future__ import annotations

from together.api.renderers import iso_date, iso_timestamp


def render_receipt(receipt) -> dict:
    return {
        "id": receipt.id,
        "object": "receipt",
        "number": receipt.number,
        "kind": receipt.kind,
        "status": receipt.status,
        "donation_id": receipt.donation_id,
        "donor_id": receipt.donor_id,
        "amount_cents": receipt.amount_cents,
        "currency": receipt.currency,
        "donation_date": iso_date(receipt.donation_date),
        "deductibility": receipt.deductibility,
        "issued_at": iso_timestamp(receipt.issued_at),
        "emailed_at": iso_timestamp(receipt.emailed_at),
        "withdrawn_at": iso_timestamp(receipt.withdrawn_at),
        "withdraw_reason": receipt.withdraw_reason,
        "replaced_by_id": receipt.replaced_by_id,
    }

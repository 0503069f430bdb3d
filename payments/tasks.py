from __future__ import annotations

from celery import shared_task

from payments.billing import billing_run


@shared_task(acks_late=True)
def recurring_billing_sweep() -> dict[str, int]:
    """Every few minutes (Celery beat): bill the recurring plans that are due
    (payments.billing: each plan claimed with SKIP LOCKED, one PaymentIntent per plan
    and period, so overlapping runs and a worker killed mid-run never charge twice)."""
    return billing_run()

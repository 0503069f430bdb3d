from __future__ import annotations

from celery import shared_task

from recommendations.services import introduction_expire_due


@shared_task(acks_late=True)
def introductions_expire_sweep() -> int:
    """Hourly (Celery beat): open introductions past their 14-day TTL become `expired`."""
    return introduction_expire_due()

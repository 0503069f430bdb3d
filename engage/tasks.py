from __future__ import annotations

from celery import shared_task

from engage.services import checkout_links_expire_due


@shared_task(acks_late=True)
def checkout_links_expire_sweep() -> int:
    """Every 15 minutes (Celery beat): ACTIVE checkout links past their expiry are stored
    as EXPIRED (`checkout_link.expired`). Pages, the API and checkout already treat
    them as expired the moment `expires_at` passes; this only persists it."""
    return checkout_links_expire_due()

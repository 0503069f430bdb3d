"""Celery tasks: ids in, the pipeline in webhooks/delivery.py does the work.

Every task is `acks_late`: a message is acknowledged after the task ran, so a
worker killed mid-task gets it redelivered; and the sweep recovers from the
database whatever the broker lost anyway.
"""
from __future__ import annotations

from celery import shared_task

from webhooks import delivery, services


@shared_task(acks_late=True, ignore_result=True)
def endpoint_flush(endpoint_id: str) -> int:
    return delivery.endpoint_flush(endpoint_id=endpoint_id)


@shared_task(acks_late=True, ignore_result=True)
def webhook_sweep() -> dict:
    return delivery.sweep()


@shared_task(acks_late=True, ignore_result=True)
def events_prune() -> int:
    return services.events_prune()

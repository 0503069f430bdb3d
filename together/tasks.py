from __future__ import annotations

from celery import shared_task

from together.idempotency import idempotency_keys_prune


@shared_task
def prune_idempotency_keys() -> int:
    """Idempotency keys are kept at least 24 hours, then pruned (hourly by beat)."""
    return idempotency_keys_prune()


@shared_task(acks_late=True, ignore_result=True)
def coalesced_drain(name: str, group: str, chunk: int = 500) -> int:
    """Send the task `name` for the items coalesced under (name, group) (together.celery.coalesced_send)."""
    from together.celery import coalesced_drain as drain

    return drain(name, group, chunk)


@shared_task(acks_late=True, ignore_result=True)
def coalesced_drain_all() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE["coalesced-drain-all"]): lists whose drain message was lost."""
    from together.celery import coalesced_drain_all as drain_all

    return drain_all()

from __future__ import annotations

from celery import shared_task

from together.idempotency import idempotency_keys_prune


@shared_task
def prune_idempotency_keys() -> int:
    """Idempotency keys are kept at least 24 hours, then pruned (hourly by beat)."""
    return idempotency_keys_prune()

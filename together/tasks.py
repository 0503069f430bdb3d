from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from together.models import IdempotencyKey


@shared_task
def prune_idempotency_keys() -> int:
    """Idempotency keys are kept at least 24 hours, then pruned (hourly by beat)."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted

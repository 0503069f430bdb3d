"""Celery tasks of donations: a service does the work."""
from celery import shared_task

from donations.rollups import rollup_compact


@shared_task(acks_late=True, ignore_result=True)
def rollup_compact_task() -> int:
    """Fold the per-day rollup's delta rows (donations.rollups.rollup_compact)."""
    return rollup_compact()

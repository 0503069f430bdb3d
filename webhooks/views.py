"""The public developer page on webhooks: what a receiver sees and must do."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.shortcuts import render

from webhooks.events import EVENT_TYPES, TEST_EVENT_TYPE


def _human(seconds: float) -> str:
    delta = timedelta(seconds=seconds)
    if delta < timedelta(minutes=1):
        return f"{seconds:g} s"
    if delta < timedelta(hours=1):
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def developer_webhooks(request):
    return render(request, "webhooks/developer.html", {
        "event_types": EVENT_TYPES,
        "test_event_type": TEST_EVENT_TYPE,
        "schedule": [_human(s) for s in settings.WEBHOOKS_RETRY_SCHEDULE],
        "attempts": len(settings.WEBHOOKS_RETRY_SCHEDULE) + 1,
        "timeout": f"{settings.WEBHOOKS_TIMEOUT_SECONDS:g}",
        "disable_days": settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS,
        "retention_days": settings.WEBHOOKS_EVENT_RETENTION_DAYS,
        "overlap_hours": settings.WEBHOOKS_SECRET_OVERLAP_HOURS,
    })

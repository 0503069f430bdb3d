from __future__ import annotations

import datetime as dt

import orjson
from rest_framework.renderers import BaseRenderer


def _default(value):
    if isinstance(value, (set, frozenset)):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def dumps(data) -> bytes:
    return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)


def iso_timestamp(value: dt.datetime | None) -> str | None:
    """REST timestamps: ISO 8601 UTC with milliseconds and Z."""
    if value is None:
        return None
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def iso_date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


class JSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)

"""What the recommendations services share."""
from __future__ import annotations

import logging
from typing import Any

from together.actors import Actor
from together.exceptions import ApplicationError

log = logging.getLogger("together.recommendations")

_UNSET: Any = object()


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    default_message = "A dependency is temporarily unavailable. Retry after a short wait."


def _system_actor(label: str, request_id: str = "") -> Actor:
    return Actor(type="SYSTEM", label=label, request_id=request_id)

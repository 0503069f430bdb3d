from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, an API key, or the system itself."""

    type: str  # "USER" | "API_KEY" | "SYSTEM"
    id: str = ""
    label: str = ""
    request_id: str = ""
    user: Any = None

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(type="SYSTEM", label=label)

    @classmethod
    def for_user(cls, user, request_id: str = "") -> "Actor":
        return cls(type="USER", id=str(user.pk), label=user.get_username(), request_id=request_id, user=user)

    @classmethod
    def for_api_key(cls, api_key, request_id: str = "") -> "Actor":
        return cls(type="API_KEY", id=api_key.id, label=f"{api_key.name} ({api_key.prefix}…)", request_id=request_id)

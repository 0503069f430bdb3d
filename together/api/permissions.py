from __future__ import annotations

from rest_framework.permissions import BasePermission

from together.exceptions import Forbidden, Unauthorized

READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class ApiKeyScopePermission(BasePermission):
    """Deny by default. A view declares `required_scope`: None (no key needed),
    "READ" (any key) or "WRITE"; the default is READ for safe methods and WRITE
    for everything else. Views never write has_permission."""

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "required_scope", "DEFAULT")
        if isinstance(required, dict):
            required = required.get(request.method, "DEFAULT")
        if required == "DEFAULT":
            required = "READ" if request.method in READ_METHODS else "WRITE"
        if required is None:
            return True
        key = getattr(request, "api_key", None)
        if key is None:
            raise Unauthorized()
        if required == "WRITE" and key.scope != "WRITE":
            raise Forbidden("This operation needs a WRITE key; this key is READ.")
        return True

from functools import lru_cache

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf

from together.dashboard import url_or_none

EXTRA_NAV = [("compliance", "compliance-home", "Compliance"), ("sets", "recommendation-sets", "Recommendation sets"),
             ("reports", "reports", "Reports"), ("receipts", "receipts-finance", "Receipts")]


@lru_cache(maxsize=16)
def _extra_nav(urlconf: str, script_prefix: str) -> tuple[dict, ...]:
    """The optional apps' nav entries whose pages exist, reversed once per URL conf and prefix."""
    return tuple({"key": key, "url": url, "label": label}
                 for key, name, label in EXTRA_NAV if (url := url_or_none(name)))


def dashboard(request):
    """The frame's context: set only on dashboard pages (after DashboardMixin ran)."""
    role = getattr(request, "role", None)
    organisation = getattr(request, "organisation", None)
    if role is None or organisation is None or not request.user.is_authenticated:
        return {}
    return {"dash": {"organisation": organisation, "role": role,
                     "extra_nav": _extra_nav(str(get_urlconf() or settings.ROOT_URLCONF), get_script_prefix()),
                     "can_write": role in ("ADMIN", "EDITOR"), "is_admin": role == "ADMIN",
                     # the frame only asks "more than one?" (Switch organisation): DashboardMixin's
                     # resolve_active, which set the role, counted the memberships it read
                     "organisation_count": request.membership_count}}

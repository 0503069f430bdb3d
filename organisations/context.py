from organisations.session import memberships_of
from together.dashboard import url_or_none


def dashboard(request):
    """The frame's context: set only on dashboard pages (after DashboardMixin ran)."""
    role = getattr(request, "role", None)
    organisation = getattr(request, "organisation", None)
    if role is None or organisation is None or not request.user.is_authenticated:
        return {}
    extra = []
    for key, name, label in [("compliance", "compliance-home", "Compliance"), ("sets", "recommendation-sets", "Recommendation sets"),
                             ("reports", "reports", "Reports"), ("receipts", "receipts-finance", "Receipts")]:
        url = url_or_none(name)
        if url:
            extra.append({"key": key, "url": url, "label": label})
    return {"dash": {"organisation": organisation, "role": role, "extra_nav": extra,
                     "can_write": role in ("ADMIN", "EDITOR"), "is_admin": role == "ADMIN",
                     "organisation_count": len(memberships_of(request.user))}}

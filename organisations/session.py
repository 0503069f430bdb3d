"""The one place the dashboard resolves who is acting on which organisation.

The active organisation is held per browser session in the `pc_active_org`
cookie (a session cookie) and re-checked against the user's memberships on
every request, so a forged value can never reach an organisation the user has
no role in. A member of a live organisation has the same role on its sandbox.
"""
from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404

from organisations.models import ROLE_RANK, Membership, Organisation, Role, role_at_least
from together.actors import Actor

COOKIE = "pc_active_org"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def memberships_of(user) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("organisation__sandbox").order_by("organisation__name"))


def resolve_active(request) -> tuple[Organisation, str] | None:
    """(organisation, role) for this request, or None if the user has no membership.

    Sets `request.membership_count` (how many organisations the user belongs to) from
    the memberships it read, so the frame's "Switch organisation" needs no query of its own."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = memberships_of(user)
    request.membership_count = len(memberships)
    if not memberships:
        return None
    by_live = {m.organisation_id: m for m in memberships}
    wanted = request.COOKIES.get(COOKIE)
    if wanted:
        org = Organisation.objects.filter(pk=wanted).select_related("live_organisation").first()
        if org is not None:
            membership = by_live.get(org.live_organisation_id if org.is_sandbox else org.id)
            if membership is not None:
                return org, membership.role
    first = memberships[0]
    return first.organisation, first.role


def has_role(role: str | None, needed: str) -> bool:
    return role_at_least(role, needed)


class DashboardMixin(LoginRequiredMixin):
    """Sets `request.organisation`, `request.role` and `request.actor`.

    `required_role` guards reads; `write_role` guards POST (default EDITOR). A
    role without the right gets 403."""

    required_role: str = Role.VIEWER
    write_role: str = Role.EDITOR

    # --- the one way a dashboard view reads its organisation's records ----------------

    def scoped(self, source):
        """`source` (a tenant model or a queryset of one) limited to the active
        organisation. Every dashboard read of tenant records starts here."""
        queryset = source._default_manager.all() if isinstance(source, type) else source
        return queryset.for_organisation(self.request.organisation)

    def get_scoped_or_404(self, source, pk):
        """One record of the active organisation; another organisation's id
        (or the sandbox twin's) is a 404, exactly like a missing one."""
        obj = self.scoped(source).filter(pk=pk).first() if pk else None
        if obj is None:
            raise Http404("Not found")
        return obj

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        active = resolve_active(request)
        if active is None:
            raise PermissionDenied("You are not a member of any organisation.")
        request.organisation, request.role = active
        request.actor = Actor.for_user(request.user, getattr(request, "request_id", ""))
        needed = self.required_role if request.method in SAFE_METHODS else max(self.required_role, self.write_role, key=ROLE_RANK.get)
        if not has_role(request.role, needed):
            raise PermissionDenied(f"This page needs the {needed} role.")
        return super().dispatch(request, *args, **kwargs)


def require_role(request, needed: str) -> None:
    if not has_role(getattr(request, "role", None), needed):
        raise PermissionDenied(f"This action needs the {needed} role.")


def set_active(response, organisation: Organisation) -> None:
    from django.conf import settings

    response.set_cookie(COOKIE, organisation.id, httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)


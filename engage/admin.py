"""Forms and checkout links in the staff admin: read-only pages; changes are
actions through engage.services, by the records' writing role (EDITOR)."""
from __future__ import annotations

from django.contrib import admin, messages

from engage import services
from engage.models import CheckoutLink, DonationForm
from organisations.admin_tenancy import ReadOnlyTenantAdmin
from together.exceptions import ApplicationError


def _run(modeladmin, request, queryset, label: str, call) -> None:
    done = 0
    for obj in queryset:
        try:
            call(obj, request.actor)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj.pk}: {exc.message}", messages.ERROR)
    modeladmin.message_user(request, f"{label}: {done}.")


@admin.register(DonationForm)
class DonationFormAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "name", "slug", "status", "organisation", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "name", "slug", "title"]
    ordering = ["-created_at", "-id"]
    actions = ["archive"]

    @admin.action(description="Archive (final: the page answers 404)", permissions=["write"])
    def archive(self, request, queryset):
        _run(self, request, queryset, "Archived", lambda form, actor: services.form_archive(
            organisation=form.organisation, actor=actor, form_id=form.id))


@admin.register(CheckoutLink)
class CheckoutLinkAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "donor", "amount_cents", "shown_status", "expires_at", "organisation", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "code", "donor__email", "description"]
    ordering = ["-created_at", "-id"]
    raw_id_fields = ["donor", "donation"]
    actions = ["cancel"]

    @admin.display(description="Status")
    def shown_status(self, link):
        return link.effective_status()

    @admin.action(description="Cancel (the page refuses payment)", permissions=["write"])
    def cancel(self, request, queryset):
        _run(self, request, queryset, "Cancelled", lambda link, actor: services.checkout_link_cancel(
            organisation=link.organisation, actor=actor, link_id=link.id))

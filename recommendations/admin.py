"""Staff admin for recommendations: browsable, read-only; every change is an
action that calls the services (so rules, audit and events apply)."""
from __future__ import annotations

from django.contrib import admin, messages

from recommendations import services
from recommendations.models import (
    DistributionPassphrase, Introduction, RecipientOrgAccountLink, RecommendationSet, SplitGift, SplitGiftPart,
)
from organisations.admin_tenancy import ReadOnlyTenantAdmin
from together.exceptions import ApplicationError

# Read-only forms; changes are actions through the services, by the kind's writing role ("write"):
# passphrases, links and introductions are the organisation's administration (ADMIN), sets and gifts its records.


def _run(modeladmin, request, queryset, label: str, call) -> None:
    actor = request.actor
    done = 0
    for obj in queryset:
        try:
            call(obj, actor)
            done += 1
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{obj.pk}: {exc.message}", messages.ERROR)
    modeladmin.message_user(request, f"{label}: {done}.")


@admin.register(DistributionPassphrase)
class DistributionPassphraseAdmin(ReadOnlyTenantAdmin):
    object_kind = "administration"
    list_display = ["id", "organisation", "word_count", "created_at", "ended_at", "end_reason"]
    list_filter = ["end_reason"]
    exclude = ["hashed"]
    actions = ["revoke"]

    @admin.action(description="Revoke the organisation's active passphrase", permissions=["write"])
    def revoke(self, request, queryset):
        _run(self, request, queryset.filter(ended_at__isnull=True), "Revoked",
             lambda p, actor: services.distribution_passphrase_revoke(organisation=p.organisation, actor=actor))


@admin.register(RecipientOrgAccountLink)
class RecipientOrgAccountLinkAdmin(ReadOnlyTenantAdmin):
    object_kind = "administration"
    list_display = ["id", "organisation", "label", "recipient_organisation", "is_active", "deactivated_by", "introduction", "created_at"]
    list_filter = ["is_active", "deactivated_by"]
    search_fields = ["id", "label", "recipient_organisation__name"]
    actions = ["deactivate"]

    @admin.action(description="Deactivate (as the owning organisation)", permissions=["write"])
    def deactivate(self, request, queryset):
        _run(self, request, queryset, "Deactivated", lambda link, actor: services.recipient_link_update(
            organisation=link.organisation, actor=actor, link_id=link.id, is_active=False))


@admin.register(Introduction)
class IntroductionAdmin(ReadOnlyTenantAdmin):
    object_kind = "administration"
    list_display = ["id", "organisation", "invitee_email", "invitee_org_name_hint", "status", "expires_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "invitee_email", "invitee_org_name_hint"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke (pending, viewed or accepted only)", permissions=["write"])
    def revoke(self, request, queryset):
        _run(self, request, queryset, "Revoked", lambda intro, actor: services.introduction_revoke(
            organisation=intro.organisation, actor=actor, introduction_id=intro.id))


@admin.register(RecommendationSet)
class RecommendationSetAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "organisation", "name", "amount_mode", "is_active", "created_at"]
    list_filter = ["amount_mode", "is_active"]
    search_fields = ["id", "name"]
    actions = ["deactivate"]

    @admin.action(description="Delete (deactivate; kept for the gifts that used it)", permissions=["write"])
    def deactivate(self, request, queryset):
        _run(self, request, queryset, "Deactivated", lambda s, actor: services.recommendation_set_delete(
            organisation=s.organisation, actor=actor, set_id=s.id))


class SplitGiftPartInline(admin.TabularInline):
    model = SplitGiftPart
    fields = ["position", "recipient_organisation", "amount_cents", "donation"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SplitGift)
class SplitGiftAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "organisation", "recommendation_set", "status", "total_cents", "donation_date", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "payment_reference"]
    inlines = [SplitGiftPartInline]

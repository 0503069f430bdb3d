"""Staff admin for webhooks: read-only forms; actions call the services.
Endpoints and their deliveries are the organisation's administration: members
read them, only its ADMINs disable an endpoint or retry a delivery."""
from __future__ import annotations

from django.contrib import admin, messages

from organisations.admin_tenancy import TenantAdminMixin
from together.exceptions import ApplicationError
from webhooks import services
from webhooks.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(Event)
class EventAdmin(TenantAdminMixin, admin.ModelAdmin):
    object_kind = "administration"
    list_display = ("id", "type", "organisation", "occurred_at")
    list_filter = ("type",)
    search_fields = ("id",)
    readonly_fields = ("id", "organisation", "type", "occurred_at", "data", "created_at", "updated_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the outbox and its history: pruned by events_prune only


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdminMixin, admin.ModelAdmin):
    object_kind = "administration"
    list_display = ("id", "url", "organisation", "status", "failing_since", "created_at")
    list_filter = ("status",)
    search_fields = ("id", "url")
    exclude = ("secret", "previous_secret")
    readonly_fields = ("id", "organisation", "url", "description", "enabled_events", "status", "disabled_reason",
                       "disabled_at", "previous_secret_expires_at", "failing_since", "created_at", "updated_at")
    actions = ["disable"]

    def has_add_permission(self, request):
        return False  # made in Settings → Webhooks, where the signing secret shows once

    def has_change_permission(self, request, obj=None):
        return False  # edited in Settings → Webhooks (webhook_endpoint_update)

    def has_delete_permission(self, request, obj=None):
        return False  # deleted in Settings → Webhooks (webhook_endpoint_delete); disabled here

    @admin.action(description="Disable the selected endpoints", permissions=["write"])
    def disable(self, request, queryset):
        actor = request.actor
        for endpoint in queryset.select_related("organisation"):
            services.webhook_endpoint_staff_disable(organisation=endpoint.organisation, actor=actor, endpoint_id=endpoint.id)
        messages.success(request, "Disabled.")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("attempt_number", "succeeded", "status_code", "latency_ms", "error", "response_excerpt", "next_attempt_at", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantAdminMixin, admin.ModelAdmin):
    object_kind = "administration"
    list_display = ("id", "endpoint", "event", "status", "attempt_count", "next_attempt_at", "last_status_code")
    list_filter = ("status",)
    search_fields = ("id", "event__id", "endpoint__id")
    readonly_fields = ("id", "organisation", "endpoint", "event", "status", "attempt_count", "next_attempt_at",
                       "leased_until", "lease_token", "last_status_code", "last_error", "delivered_at", "created_at", "updated_at")
    inlines = [WebhookAttemptInline]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the delivery log stays

    @admin.action(description="Retry the selected deliveries now", permissions=["write"])
    def retry(self, request, queryset):
        actor = request.actor
        done = 0
        for delivery in queryset.select_related("organisation"):
            try:
                services.webhook_delivery_retry(organisation=delivery.organisation, actor=actor, delivery_id=delivery.id)
                done += 1
            except ApplicationError as exc:
                messages.warning(request, f"{delivery.id}: {exc.message}")
        messages.success(request, f"{done} deliveries queued.")

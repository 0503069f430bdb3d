"""Staff admin for payments: read-only. Payments, their parts and payouts are
records the Stripe flow writes (members browse them); Stripe's events are the
platform's, for superusers only. Money moves only through the services
(refunds from the donation's page or the API)."""
from __future__ import annotations

from django.contrib import admin

from organisations.admin_tenancy import ReadOnlyTenantAdmin, SuperuserOnlyAdminMixin
from payments.models import Payment, PaymentPart, Payout, StripeEvent


class PaymentPartInline(admin.TabularInline):
    model = PaymentPart
    fields = ("position", "recipient_organisation", "amount_cents", "fee_cents", "revenue_code", "campaign_id", "donation",
              "stripe_transfer_id", "transfer_reversed_cents")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ("id", "organisation", "kind", "amount_cents", "currency", "status", "payment_intent_id", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("id", "payment_intent_id", "stripe_charge_id", "attempt_key")
    readonly_fields = ("id", "organisation", "kind", "source", "form", "checkout_link", "recommendation_set_id", "attempt_key",
                       "payment_intent_id", "stripe_charge_id", "amount_cents", "currency", "status", "donor_details",
                       "consent_text", "consent_given", "frequency", "transfer_group", "failure_message", "request_id",
                       "succeeded_at", "failed_at", "refunded_at", "created_at", "updated_at")
    exclude = ("client_secret",)
    inlines = [PaymentPartInline]
    date_hierarchy = "created_at"


@admin.register(Payout)
class PayoutAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ("payout_id", "organisation", "amount_cents", "currency", "status", "arrival_date", "donations_count",
                    "net_cents", "paid_at")
    list_filter = ("status",)
    search_fields = ("payout_id",)
    readonly_fields = ("id", "organisation", "payout_id", "amount_cents", "currency", "arrival_date", "status", "paid_at",
                       "donations_count", "gross_cents", "fee_cents", "net_cents", "created_at", "updated_at")


@admin.register(StripeEvent)
class StripeEventAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    tenant_global = "Stripe's events reach the platform, not one organisation: superusers only"
    list_display = ("event_id", "type", "livemode", "outcome", "received_at", "processed_at")
    list_filter = ("type", "outcome", "livemode")
    search_fields = ("event_id", "object_id")
    readonly_fields = ("id", "event_id", "type", "livemode", "object_id", "received_at", "processed_at", "outcome", "detail")

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

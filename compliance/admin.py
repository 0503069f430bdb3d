from django.contrib import admin

from compliance.models import (
    ComplianceBreach, ComplianceSettings, DisclosureObligation, DonorAggregate, ElectionPeriod, Recompute, RegimeRule, RevenueCode,
)
from compliance.services import election_period_create, election_period_delete, election_period_update, regime_rule_save
from reports.admin_tools import financial_year_filter, report_actions
from organisations.admin_tenancy import ReadOnlyTenantAdmin, TenantAdminMixin
from together.admin import ServiceAdmin, ServiceForm




@admin.register(RegimeRule)
class RegimeRuleAdmin(admin.ModelAdmin):
    """The law's numbers: editable by superusers only."""

    tenant_global = "the law's numbers are the same for every organisation; staff read them, superusers edit them"
    list_display = ["name", "jurisdiction", "effective_from", "effective_to", "period_kind", "threshold_cents", "threshold_comparator", "cap_cents", "deadline_rule"]
    list_filter = ["jurisdiction", "period_kind", "threshold_comparator", "deadline_rule", "election_deadlines"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff  # public law: every staff user reads it

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def save_model(self, request, obj, form, change):
        regime_rule_save(rule=obj, actor=request.actor)  # saves, then recomputes every organisation it touches


@admin.register(RevenueCode)
class RevenueCodeAdmin(ReadOnlyTenantAdmin):
    object_kind = "administration"  # the organisation's compliance settings
    list_display = ["code", "jurisdiction", "status", "reviewed", "organisation", "created_at"]
    list_filter = ["jurisdiction", "status", "reviewed", "organisation"]
    search_fields = ["code", "id"]


@admin.register(DisclosureObligation)
class DisclosureObligationAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "donor", "jurisdiction", "period_start", "period_end", "aggregate_cents", "due_date", "status", "organisation"]
    list_filter = ["status", "jurisdiction", financial_year_filter("period_start", "period (financial year of its start)"),
                   "period_start", "due_date", "organisation"]
    search_fields = ["id", "donor__email", "donor__last_name", "lodged_reference"]
    list_select_related = ["donor", "organisation"]
    actions = report_actions("disclosure-return", restrict="obligation", label="the disclosure return of the selected obligations")


@admin.register(ComplianceBreach)
class ComplianceBreachAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "donor", "jurisdiction", "period_start", "cap_cents", "aggregate_cents", "excess_cents", "created_at", "organisation"]
    list_filter = ["jurisdiction", financial_year_filter("period_start", "period (financial year of its start)"), "organisation"]
    search_fields = ["id", "donor__email"]


@admin.register(DonorAggregate)
class DonorAggregateAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["donor", "jurisdiction", "period_start", "period_end", "total_cents", "alert_level", "organisation"]
    list_filter = ["jurisdiction", "alert_level", "organisation"]


ELECTION_INPUT = ["election_type", "jurisdiction", "name", "writ_date", "polling_date"]


class ElectionPeriodForm(ServiceForm):
    class Meta:
        model = ElectionPeriod
        fields = ["organisation", *ELECTION_INPUT]

    def call_service(self, actor, data):
        values = {k: data.get(k) for k in ELECTION_INPUT}
        if not self.instance._state.adding:
            return election_period_update(organisation=self.instance.organisation, actor=actor,
                                          election_period_id=self.instance.pk, **values)
        return election_period_create(organisation=data["organisation"], actor=actor, **values)


@admin.register(ElectionPeriod)
class ElectionPeriodAdmin(TenantAdminMixin, ServiceAdmin):
    object_kind = "administration"  # compliance settings: deadlines follow them
    form = ElectionPeriodForm

    def get_readonly_fields(self, request, obj=None):
        return ["organisation"] if obj else []

    def has_delete_permission(self, request, obj=None):
        """The role decides, as before ServiceAdmin (which offers no delete); the delete is a service call."""
        return self.role_allows(request, obj, "delete")

    def delete_model(self, request, obj):
        election_period_delete(organisation=obj.organisation, actor=request.actor, election_period_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("organisation"):
            self.delete_model(request, obj)
    list_display = ["name", "election_type", "jurisdiction", "writ_date", "polling_date", "organisation"]
    list_filter = ["election_type", "jurisdiction"]


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(ReadOnlyTenantAdmin):
    object_kind = "administration"
    list_display = ["organisation", "default_jurisdiction", "entity_type", "alert_amber_percent", "alert_red_percent", "alert_critical_percent"]


@admin.register(Recompute)
class RecomputeAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "reason", "from_jurisdiction", "to_jurisdiction", "status", "donors_affected", "obligations_created", "breaches_created", "created_at"]

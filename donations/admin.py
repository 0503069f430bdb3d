from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect
from django.template.response import TemplateResponse

from donations import services
from donations.forms import VoidForm
from donations.models import Campaign, Donation, Donor, DonorMerge, DonorType
from donations.representations import DONOR_WRITABLE
from organisations.admin_tenancy import ReadOnlyTenantAdmin, TenantAdminMixin, may
from reports.admin_tools import RevenueCodeFilter, financial_year_filter, report_actions
from together.admin import ServiceAdmin, ServiceForm
from together.exceptions import ApplicationError

DONOR_INPUT = [f for f in DONOR_WRITABLE if f not in ("metadata", "employer_id")]  # metadata is the API's
# The form's fields: the employer (a choice of donor, given to the services as employer_id) after the names.
_AFTER_NAMES = DONOR_INPUT.index("organisation_name") + 1
DONOR_FORM_FIELDS = ["organisation", *DONOR_INPUT[:_AFTER_NAMES], "employer", *DONOR_INPUT[_AFTER_NAMES:]]


class EmployerAutocomplete(AutocompleteSelect):
    """The donor autocomplete, asking for employers: its URL names the edited donor's
    organisation and the donor itself (DonorAdmin.get_search_results narrows to that
    organisation's ORGANISATION donors, without the donor)."""

    organisation_id: str | None = None
    donor_id: str | None = None

    def get_url(self):
        params = {k: v for k, v in (("organisation", self.organisation_id), ("exclude", self.donor_id)) if v}
        return f"{super().get_url()}?{urlencode(params)}" if params else super().get_url()


class DonorForm(ServiceForm):
    # A service refusal about `employer_id` (donations.crm.employer_clean) shows beside the employer field.
    param_fields = {"employer_id": "employer"}

    class Meta:
        model = Donor
        fields = DONOR_FORM_FIELDS
        help_texts = {"employer": "An INDIVIDUAL donor's employer, or the organisation they give through: a donor of type "
                                  "ORGANISATION in the same organisation."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("employer")
        if field is None or self.instance._state.adding:
            return
        # Editing: the choices are this organisation's ORGANISATION donors, the donor itself excepted.
        organisation = self.instance.organisation
        field.queryset = (field.queryset.filter(organisation=organisation, donor_type=DonorType.ORGANISATION)
                          .exclude(pk=self.instance.pk))
        widget = getattr(field.widget, "widget", field.widget)
        if isinstance(widget, EmployerAutocomplete):
            widget.organisation_id, widget.donor_id = organisation.id, self.instance.pk

    def call_service(self, actor, data):
        fields = {k: data.get(k) for k in DONOR_INPUT}
        if "employer" in self.fields:
            fields["employer_id"] = data["employer"].pk if data.get("employer") else None
        if not self.instance._state.adding:
            return services.donor_update(organisation=self.instance.organisation, actor=actor, donor_id=self.instance.pk, **fields)
        return services.donor_create(organisation=data["organisation"], actor=actor, **fields)


@admin.register(Donor)
class DonorAdmin(TenantAdminMixin, ServiceAdmin):
    object_kind = "records"
    form = DonorForm
    list_display = ["id", "__str__", "donor_type", "email", "postcode", "donations_total_cents", "donations_count", "organisation", "created_at"]
    list_filter = ["donor_type", "state", "country", "organisation"]
    ordering = ["-created_at", "-id"]  # stable pages for the list and the donor autocomplete
    actions = report_actions("donations", restrict="donor", label="the donations of the selected donors")
    search_fields = ["id", "email", "first_name", "last_name", "organisation_name", "external_id"]
    readonly_fields = ["id", "donations_total_cents", "donations_count", "created_at", "updated_at"]
    list_select_related = ["organisation"]
    autocomplete_fields = ["employer"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organisation"] if obj else self.readonly_fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "employer":
            kwargs["widget"] = EmployerAutocomplete(db_field, self.admin_site)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "employer":  # the member's organisations' (TenantAdminMixin), of type ORGANISATION
            field.queryset = field.queryset.filter(donor_type=DonorType.ORGANISATION)
        return field

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if _employer_autocomplete(request):
            queryset = queryset.filter(donor_type=DonorType.ORGANISATION)
            if request.GET.get("organisation"):
                queryset = queryset.filter(organisation_id=request.GET["organisation"])
            if request.GET.get("exclude"):
                queryset = queryset.exclude(pk=request.GET["exclude"])
        return queryset, may_have_duplicates


def _employer_autocomplete(request) -> bool:
    """The admin's autocomplete asking for a donor's employer (EmployerAutocomplete)."""
    match = getattr(request, "resolver_match", None)
    return (match is not None and match.url_name == "autocomplete" and request.GET.get("app_label") == "donations"
            and request.GET.get("model_name") == "donor" and request.GET.get("field_name") == "employer")


DONATION_INPUT = ["donor", "campaign", "donation_type", "amount_cents", "donation_date", "payment_method", "reference",
                  "in_kind_category", "in_kind_description", "in_kind_valuation_method", "revenue_code", "notes", "external_id",
                  "custom_fields"]


class DonationForm(ServiceForm):
    class Meta:
        model = Donation
        fields = ["organisation", *DONATION_INPUT]

    def call_service(self, actor, data):
        values = {k: data.get(k) for k in DONATION_INPUT}
        values["donor_id"] = values.pop("donor").pk if values.get("donor") else None
        campaign = values.pop("campaign")
        values["campaign_id"] = campaign.pk if campaign else None
        if not self.instance._state.adding:
            organisation = self.instance.organisation
            values.pop("donation_type")
            changed = {k: v for k, v in values.items() if k in self.changed_data or k.removesuffix("_id") in self.changed_data}
            return services.donation_update(organisation=organisation, actor=actor, donation_id=self.instance.pk, **changed)
        return services.donation_record(organisation=data["organisation"], actor=actor, **values)


@admin.action(description="Void the selected donations (entered in error)…", permissions=["change"])
def void_selected(modeladmin, request, queryset):
    """Asks for a reason, then voids each selected donation through
    donations.services.donation_void (its compliance recompute and audit
    included). A refusal (already voided, say) is reported per donation."""
    form = VoidForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        actor = request.actor
        done, refused = 0, []
        for donation in queryset.select_related("organisation").order_by("created_at", "id"):
            if not may(request, donation.organisation_id, "EDITOR"):
                continue
            try:
                services.donation_void(organisation=donation.organisation, actor=actor, donation_id=donation.id,
                                       reason=form.cleaned_data["reason"])
                done += 1
            except ApplicationError as exc:
                refused.append(f"{donation.id}: {exc.message}")
        modeladmin.message_user(request, f"{done} donation(s) voided.", messages.SUCCESS if done else messages.WARNING)
        for line in refused[:20]:
            modeladmin.message_user(request, line, messages.ERROR)
        return None
    return TemplateResponse(request, "admin/donations/void_selected.html", {
        **modeladmin.admin_site.each_context(request), "title": "Void donations", "form": form,
        "donations": queryset.select_related("donor")[:200], "count": queryset.count(), "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "select_across": request.POST.get("select_across", "0"),
        # Only the rows the list let through (the member's), never ids echoed from the request.
        "selected": list(queryset.values_list("pk", flat=True)[:1000]),
    })


@admin.register(Donation)
class DonationAdmin(TenantAdminMixin, ServiceAdmin):
    object_kind = "records"
    form = DonationForm
    list_display = ["id", "donor", "donation_type", "amount_cents", "donation_date", "source", "status", "payment_method",
                    "revenue_code", "jurisdiction", "organisation"]
    list_filter = [financial_year_filter("donation_date"), "donation_date", "jurisdiction", "campaign", "donation_type", "payment_method",
                   "status", "source", RevenueCodeFilter, "in_kind_category", "organisation"]
    search_fields = ["id", "reference", "revenue_code", "external_id", "donor__email", "donor__last_name"]
    readonly_fields = ["id", "source", "status", "currency", "jurisdiction", "void_reason", "voided_at", "refund_date",
                       "refund_reason", "refunded_at", "created_at", "updated_at"]
    autocomplete_fields = ["donor", "campaign"]
    list_select_related = ["donor", "organisation"]
    date_hierarchy = "donation_date"
    actions = [
        void_selected,
        *report_actions("donations", restrict="donation", label="the donations report of the selection"),
        *report_actions("in-kind-register", restrict="donation", label="the in-kind register of the selection"),
        *report_actions("reconciliation", restrict="donation", label="the reconciliation of the selection"),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.can_edit:  # Donation.can_edit: the services' own rule
            return [*self.readonly_fields, "organisation", *DONATION_INPUT]
        return [*self.readonly_fields, "organisation", "donation_type"] if obj else self.readonly_fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        refusal = obj.refusal_for("edit") if obj is not None else None
        if refusal is not None:  # read only, and why (a save would be refused by donation_update anyway)
            if request.method == "GET":
                self.message_user(request, f"Read only: {refusal.message}", messages.INFO)
            extra_context = {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                             "show_save_and_add_another": False}
        return super().change_view(request, object_id, form_url, extra_context)


class CampaignForm(ServiceForm):
    class Meta:
        model = Campaign
        fields = ["organisation", "name", "description", "goal_cents", "starts_at", "ends_at", "external_id"]

    def call_service(self, actor, data):
        fields = {k: data.get(k) for k in ["name", "description", "goal_cents", "starts_at", "ends_at", "external_id"]}
        if not self.instance._state.adding:
            return services.campaign_update(organisation=self.instance.organisation, actor=actor, campaign_id=self.instance.pk, **fields)
        return services.campaign_create(organisation=data["organisation"], actor=actor, **fields)


@admin.register(Campaign)
class CampaignAdmin(TenantAdminMixin, ServiceAdmin):
    object_kind = "records"
    form = CampaignForm
    list_display = ["id", "name", "status", "goal_cents", "starts_at", "ends_at", "organisation"]
    list_filter = ["status", "organisation"]
    ordering = ["-created_at", "-id"]
    actions = report_actions("campaign-summary", restrict="campaign", label="the campaign summary of the selected campaigns")
    search_fields = ["id", "name", "external_id"]
    readonly_fields = ["id", "status", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "organisation"] if obj else self.readonly_fields


@admin.register(DonorMerge)
class DonorMergeAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["id", "survivor", "duplicate_id_value", "actor_label", "created_at", "organisation"]
    search_fields = ["id", "duplicate_id_value", "survivor__id"]
    readonly_fields = [f.name for f in DonorMerge._meta.fields]

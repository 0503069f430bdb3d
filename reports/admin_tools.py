"""What the finance back office adds to the admin lists: filters by financial
year and revenue code, and report exports as actions on a filtered selection.

An export action exports exactly the selected rows (or, with "select all", every
row the list's filters match), through the same exporter and writer as the API
and the Reports page, for one organisation at a time.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Max, Min
from django.utils import timezone

from compliance.rules import financial_year_of, financial_year_starting
from organisations.admin_tenancy import may, scope
from together.exceptions import ApplicationError


# --- filters ----------------------------------------------------------------------------------

def financial_year_filter(field_name: str, title: str = "financial year"):
    """A list filter by Australian financial year (1 July – 30 June) of a date field."""

    class FinancialYearFilter(admin.SimpleListFilter):
        parameter_name = f"{field_name}_fy"

        def lookups(self, request, model_admin):
            current, _ = financial_year_of(timezone.localdate())
            years = range(current.year + 1, current.year - 9, -1)
            return [(str(y), f"FY {y}-{str(y + 1)[-2:]}") for y in years]

        def queryset(self, request, queryset):
            if not self.value() or not self.value().isdigit():
                return queryset
            start, end = financial_year_starting(int(self.value()))
            return queryset.filter(**{f"{field_name}__gte": start, f"{field_name}__lte": end})

    FinancialYearFilter.title = title
    FinancialYearFilter.__name__ = f"FinancialYearFilter_{field_name}"
    return FinancialYearFilter


class RevenueCodeFilter(admin.SimpleListFilter):
    """Revenue codes from the library of the organisations the user may see."""

    title = "revenue code"
    parameter_name = "revenue_code"

    def lookups(self, request, model_admin):
        from compliance.models import RevenueCode

        codes = scope(RevenueCode.objects.all(), request).order_by("code_lower").values_list("code_lower", "code")
        seen = {}
        for lower, code in codes[:500]:
            seen.setdefault(lower, code)
        return [(lower, code) for lower, code in seen.items()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(revenue_code__iexact=self.value())


# --- export actions ---------------------------------------------------------------------------

def _one_organisation(modeladmin, request, queryset):
    path = modeladmin.get_tenant_path()
    field = f"{path}_id" if path and "__" not in path else (f"{path}__id" if path else "pk")
    ids = list(queryset.order_by().values_list(field, flat=True).distinct()[:2])
    if len(ids) != 1:
        modeladmin.message_user(
            request, "Choose rows of one organisation (filter the list by organisation) to export a report.", messages.ERROR)
        return None
    from organisations.models import Organisation

    organisation = Organisation.objects.filter(pk=ids[0]).first()
    if organisation is None or not may(request, organisation.id):
        return None
    return organisation


def _date_range(donations) -> dict:
    bounds = donations.aggregate(first=Min("donation_date"), last=Max("donation_date"))
    if bounds["first"] is None:
        return {}
    return {"from": bounds["first"].isoformat(), "to": bounds["last"].isoformat()}


def export_action(report: str, fmt: str, *, restrict: str, description: str):
    """An admin action exporting `report` as `fmt` for the selected rows.

    `restrict` names what the selection is: "donation", "donor", "campaign" or
    "obligation" (a disclosure return for the selected obligations' donors)."""

    def action(modeladmin, request, queryset):
        from donations.models import Donation
        from reports.services import report_export, report_spec
        from reports.views import export_response

        organisation = _one_organisation(modeladmin, request, queryset)
        if organisation is None:
            return None
        selected = queryset.order_by().values("pk")
        donations = Donation.objects.for_organisation(organisation)
        if restrict == "donation":
            data, limit = _date_range(donations.filter(pk__in=selected)), {"donation": selected}
        elif restrict == "donor":
            data, limit = _date_range(donations.filter(donor_id__in=selected)), {"donor": selected}
        elif restrict == "campaign":
            data, limit = _date_range(donations.filter(campaign_id__in=selected)), {"campaign": selected}
        elif restrict == "obligation":
            periods = list(queryset.order_by().values_list("jurisdiction", "period_start").distinct()[:2])
            if len(periods) != 1:
                modeladmin.message_user(request, "Choose obligations of one jurisdiction and one period for a disclosure return.",
                                        messages.ERROR)
                return None
            jurisdiction, start = periods[0]
            data = {"jurisdiction": jurisdiction, "period": start.isoformat()}
            limit = {"donor": queryset.order_by().values("donor_id")}
        else:
            raise ValueError(restrict)
        if not data:
            modeladmin.message_user(request, "The selection has no donations to export.", messages.WARNING)
            return None
        try:
            spec = report_spec(organisation=organisation, name=report, data=data, restrict=limit)
            export = report_export(spec=spec, fmt=fmt, actor=request.actor,
                                   allow_job=False)
        except ApplicationError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
            return None
        return export_response(export)

    action.__name__ = f"export_{report.replace('-', '_')}_{fmt}"
    action.short_description = description
    action.allowed_permissions = ("view",)
    return action


def report_actions(report: str, *, restrict: str, label: str) -> list:
    return [export_action(report, fmt, restrict=restrict, description=f"Export {label} ({fmt.upper()})") for fmt in ("csv", "xlsx")]

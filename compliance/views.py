"""Dashboard: Settings → Compliance (revenue codes, obligations, breaches, elections, settings)."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from compliance import services
from compliance.api.filters import DisclosureObligationFilterSet, RevenueCodeFilterSet
from compliance.forms import ElectionForm, LodgeForm, RevenueCodeForm, SettingsForm
from compliance.selectors import jurisdiction_summary, obligations_timeline
from compliance.models import ComplianceBreach, DisclosureObligation, ElectionPeriod, Jurisdiction, ObligationStatus, Recompute, RevenueCode
from organisations.models import Role
from organisations.session import DashboardMixin, require_role
from together import charts
from together.dashboard import DashboardPage, call_service
from together.exceptions import ApplicationError
from together.templatetags.humanize_cents import dollars


class RevenueCodesView(DashboardMixin, View):
    write_role = Role.ADMIN

    def page(self, request, form=None, status=200):
        page = DashboardPage(request, self.scoped(RevenueCode), filterset_class=RevenueCodeFilterSet, limit=50)
        recomputes = self.scoped(Recompute).order_by("-created_at")[:5]
        return render(request, "compliance/revenue_codes.html", {
            "form": form or RevenueCodeForm(), "jurisdictions": Jurisdiction.choices, "recomputes": recomputes, "q": request.GET.get("q", ""),
            "nav": "compliance", "page_title": "Revenue codes", **page.context()}, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        org, actor = request.organisation, request.actor
        if request.POST.get("action") == "map":
            try:
                row, recompute = services.revenue_code_update(organisation=org, actor=actor, revenue_code_id=request.POST.get("id", ""),
                                                              jurisdiction=request.POST.get("jurisdiction"))
                note = " Totals are being recomputed in the background." if recompute else ""
                messages.success(request, f"{row.code} now counts toward {row.jurisdiction}.{note}")
            except ApplicationError as exc:
                messages.error(request, exc.message)
            return redirect("compliance-home")
        if request.POST.get("action") == "archive":
            try:
                row = services.revenue_code_archive(organisation=org, actor=actor, revenue_code_id=request.POST.get("id", ""))
                messages.success(request, f"{row.code} archived.")
            except ApplicationError as exc:
                messages.error(request, exc.message)
            return redirect("compliance-home")
        form = RevenueCodeForm(request.POST)
        if form.is_valid() and call_service(form, services.revenue_code_create, organisation=org, actor=actor, **form.cleaned_data):
            messages.success(request, "Code added.")
            return redirect("compliance-home")
        return self.page(request, form, status=400)


def _obligations_chart(timeline: dict, today) -> charts.Chart:
    items = [{"date": o.due_date, "tone": o.tone,
              "label": f"{o.due_date:%-d %b %Y}: {o.donor.display_name}, {o.jurisdiction}, {dollars(o.aggregate_cents)} ({o.tone})",
              "cells": [f"{o.due_date:%Y-%m-%d}", o.donor.display_name, o.jurisdiction, dollars(o.aggregate_cents), o.tone.title()]}
             for o in timeline["items"]]
    overdue = sum(1 for i in items if i["tone"] == "overdue")
    return charts.timeline(
        chart_id="obligations-timeline", title="Disclosure obligations by due date",
        description=(f"{len(items)} obligations due between {timeline['start']:%-d %B %Y} and {timeline['end']:%-d %B %Y}"
                     f"{f', {overdue} overdue' if overdue else ''}; today is marked."),
        items=items, start=timeline["start"], end=timeline["end"], today=today,
        columns_=["Due", "Donor", "Jurisdiction", "Aggregate", "Status"])


class ObligationsView(DashboardMixin, View):
    def get(self, request):
        queryset = self.scoped(DisclosureObligation).select_related("donor")
        page = DashboardPage(request, queryset, filterset_class=DisclosureObligationFilterSet, limit=50)
        today = timezone.localdate()
        return render(request, "compliance/obligations.html", {
            "nav": "compliance", "page_title": "Disclosure obligations", "form": LodgeForm(), "statuses": ObligationStatus.choices,
            "timeline": _obligations_chart(obligations_timeline(organisation=request.organisation, today=today), today),
            "summary": jurisdiction_summary(organisation=request.organisation, today=today), **page.context()})

    def post(self, request):
        form = LodgeForm(request.POST)
        if form.is_valid():
            done = call_service(form, services.obligation_lodge, organisation=request.organisation, actor=request.actor,
                                obligation_id=request.POST.get("id", ""), **form.cleaned_data)
            if done:
                messages.success(request, "Obligation marked lodged.")
                return redirect("compliance-obligations")
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs) or "Not lodged.")
        return redirect("compliance-obligations")


class BreachesView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, self.scoped(ComplianceBreach).select_related("donor"), limit=50)
        return render(request, "compliance/breaches.html", {"nav": "compliance", "page_title": "Breaches", **page.context()})


class ElectionsView(DashboardMixin, View):
    write_role = Role.ADMIN

    def page(self, request, form=None, status=200):
        elections = self.scoped(ElectionPeriod).order_by("-polling_date")[:100]
        return render(request, "compliance/elections.html", {"elections": elections, "form": form or ElectionForm(),
                                                             "nav": "compliance", "page_title": "Election periods"}, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        form = ElectionForm(request.POST)
        if form.is_valid() and call_service(form, services.election_period_create, organisation=request.organisation, actor=request.actor, **form.cleaned_data):
            messages.success(request, "Election period recorded.")
            return redirect("compliance-elections")
        return self.page(request, form, status=400)


class SettingsView(DashboardMixin, View):
    write_role = Role.ADMIN

    def get(self, request):
        current = services.compliance_settings_get(organisation=request.organisation)
        form = SettingsForm(initial={k: getattr(current, k) for k in SettingsForm.base_fields})
        return render(request, "compliance/settings.html", {"form": form, "nav": "compliance", "page_title": "Compliance settings"})

    def post(self, request):
        require_role(request, Role.ADMIN)
        form = SettingsForm(request.POST)
        if form.is_valid() and call_service(form, services.compliance_settings_update, organisation=request.organisation,
                                            actor=request.actor, **form.cleaned_data):
            messages.success(request, "Compliance settings saved.")
            return redirect("compliance-settings")
        return render(request, "compliance/settings.html", {"form": form, "nav": "compliance", "page_title": "Compliance settings"}, status=400)


__all__ = ["Http404"]

"""Dashboard pages: Engage → Forms and Engage → Checkout links. Thin: every
rule is in engage/services.py. ADMIN and EDITOR write; VIEWER reads."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views import View

from compliance.selectors import revenue_code_suggestions
from donations.models import Donor
from engage import services
from engage.api.filters import CheckoutLinkFilterSet, FormFilterSet
from engage.forms import CheckoutLinkForm, DonationFormForm, parse_dollars_or_none
from engage.models import CheckoutLink, DonationForm, FormStatus, LinkStatus
from engage.representations import form_url, link_url
from engage.selectors import link_counts, link_suggest_description
from organisations.models import Role
from organisations.session import DashboardMixin, require_role
from together.dashboard import DashboardPage, url_or_none
from together.exceptions import ApplicationError


def _org_object(model, request, pk, *related):
    qs = model.objects.for_organisation(request.organisation).filter(pk=pk)
    if related:
        qs = qs.select_related(*related)
    obj = qs.first()
    if obj is None:
        raise Http404("Not found")
    return obj


def _call(form, fn, **kwargs):
    """Call a service; a refusal lands beside the field its `param` names."""
    try:
        return fn(**kwargs)
    except ApplicationError as exc:
        field = form.param_fields.get(exc.param, exc.param)
        form.add_error(field if field in form.fields else None, exc.message)
        return None


def _payments_settings_url() -> str | None:
    return url_or_none("settings-payments")


# --- forms -------------------------------------------------------------------------------

class FormListView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, DonationForm.objects.for_organisation(request.organisation), filterset_class=FormFilterSet)
        return render(request, "engage/form_list.html", {
            "nav": "engage", "tab": "forms", "page_title": "Forms", "status": request.GET.get("status", ""),
            "statuses": FormStatus.choices, "connected": request.organisation.stripe_connected,
            "payments_url": _payments_settings_url(), **page.context(),
        })


class FormEditView(DashboardMixin, View):
    def page(self, request, form, donation_form=None, status=200):
        return render(request, "engage/form_edit.html", {
            "nav": "engage", "tab": "forms", "form": form, "donation_form": donation_form,
            "page_title": donation_form.name if donation_form else "New form",
            "public_url": form_url(donation_form.slug) if donation_form else None,
            "revenue_codes": revenue_code_suggestions(organisation=request.organisation),
            "connected": request.organisation.stripe_connected, "payments_url": _payments_settings_url(),
        }, status=status)

    def get(self, request, pk=None):
        if pk is None:
            require_role(request, Role.EDITOR)
            return self.page(request, DonationFormForm(organisation=request.organisation))
        donation_form = _org_object(DonationForm, request, pk, "campaign")
        form = DonationFormForm(initial=DonationFormForm.initial_for(donation_form), organisation=request.organisation)
        return self.page(request, form, donation_form)

    def post(self, request, pk=None):
        donation_form = _org_object(DonationForm, request, pk) if pk else None
        if donation_form and "archive" in request.POST:
            services.form_archive(organisation=request.organisation, actor=request.actor, form_id=donation_form.id)
            messages.success(request, f"Form “{donation_form.name}” archived: its page now answers “not found”.")
            return redirect("engage-forms")
        form = DonationFormForm(request.POST, organisation=request.organisation)
        if form.is_valid():  # an archived form is refused by form_update (reason form_archived), beside no field
            if donation_form:
                saved = _call(form, services.form_update, organisation=request.organisation, actor=request.actor,
                              form_id=donation_form.id, **form.service_kwargs())
            else:
                saved = _call(form, services.form_create, organisation=request.organisation, actor=request.actor, **form.service_kwargs())
            if saved:
                messages.success(request, f"Form “{saved.name}” saved ({saved.get_status_display().lower()}).")
                return redirect("engage-form-edit", saved.id)
        return self.page(request, form, donation_form, status=400)


# --- checkout links ------------------------------------------------------------------------

class LinkListView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, CheckoutLink.objects.for_organisation(request.organisation).select_related("donor"),
                             filterset_class=CheckoutLinkFilterSet)
        return render(request, "engage/link_list.html", {
            "nav": "engage", "tab": "links", "page_title": "Checkout links", "status": request.GET.get("status", ""),
            "statuses": LinkStatus.choices, "counts": link_counts(organisation=request.organisation),
            "links": [{"link": link, "status": link.effective_status(), "url": link_url(link.code)} for link in page.rows],
            **page.context(),
        })


class LinkCreateView(DashboardMixin, View):
    required_role = Role.EDITOR

    def page(self, request, form, donor=None, status=200):
        return render(request, "engage/link_new.html", {
            "nav": "engage", "tab": "links", "page_title": "New checkout link", "form": form, "donor": donor,
            "connected": request.organisation.stripe_connected, "payments_url": _payments_settings_url(),
            "revenue_codes": revenue_code_suggestions(organisation=request.organisation),
        }, status=status)

    def _donor(self, request, donor_id):
        if not donor_id:
            return None
        return Donor.objects.for_organisation(request.organisation).filter(pk=donor_id).first()

    def get(self, request):
        donor = self._donor(request, request.GET.get("donor"))
        form = CheckoutLinkForm(initial={"donor": donor.id if donor else ""}, organisation=request.organisation)
        return self.page(request, form, donor)

    def post(self, request):
        form = CheckoutLinkForm(request.POST, organisation=request.organisation)
        donor = self._donor(request, request.POST.get("donor"))
        if not request.organisation.stripe_connected:
            form.is_valid()
            return self.page(request, form, donor, status=400)
        if form.is_valid():
            link = _call(form, services.checkout_link_create, organisation=request.organisation, actor=request.actor, **form.service_kwargs())
            if link:
                messages.success(request, "Checkout link created: copy it and send it to the donor.")
                return redirect("engage-link-detail", link.id)
        return self.page(request, form, donor, status=400)


class LinkSuggestView(DashboardMixin, View):
    """*Suggest* (htmx): the description input, filled from the chosen donor and the amount."""

    required_role = Role.EDITOR

    def get(self, request):
        donor = Donor.objects.for_organisation(request.organisation).filter(pk=request.GET.get("donor", "")).first()
        current = request.GET.get("description", "")[:200]
        text = link_suggest_description(donor=donor, amount_cents=parse_dollars_or_none(request.GET.get("amount"))) if donor else current
        return HttpResponse(format_html(
            '<input type="text" name="description" maxlength="200" id="id_description" value="{}" aria-describedby="id_description_helptext">',
            text,
        ))


class LinkDetailView(DashboardMixin, View):
    def get(self, request, pk):
        link = _org_object(CheckoutLink, request, pk, "donor", "donation", "campaign")
        return render(request, "engage/link_detail.html", {
            "nav": "engage", "tab": "links", "page_title": "Checkout link", "link": link, "status": link.effective_status(),
            "url": link_url(link.code),
        })

    def post(self, request, pk):
        link = _org_object(CheckoutLink, request, pk)
        if "cancel" in request.POST:
            try:
                services.checkout_link_cancel(organisation=request.organisation, actor=request.actor, link_id=link.id)
                messages.success(request, "Checkout link cancelled: its page refuses payment.")
            except ApplicationError as exc:
                messages.error(request, exc.message)
        return redirect("engage-link-detail", link.id)

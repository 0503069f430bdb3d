"""Dashboard pages for donors, gifts, batches, donations and campaigns.

Views are thin: they resolve the organisation through DashboardMixin, parse
forms, and call the same services as the API."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from compliance.selectors import (
    compliance_alerts, donor_compliance, jurisdiction_preview, near_cap_history, revenue_code_suggestions,
)
from compliance.rules import cap_room, financial_year_of
from donations import services
from donations.api.filters import DonationFilterSet, DonorFilterSet
from donations.custom_field_forms import custom_field_values
from donations.forms import (
    BatchHeaderForm, BatchRowFormSet, CampaignForm, DonationEditForm, DonorForm, GiftForm, RefundForm, VoidForm,
    cents_to_dollars,
)
from donations.models import Campaign, DepositBatch, Donation, Donor, Source, Status
from donations.selectors import (
    campaign_gifts_by_week, campaign_progress, campaign_rollups, campaign_sources, donor_by_reference, donor_duplicate_candidates,
    donor_gifts_by_month, donor_search, year_by_month,
)
from organisations.models import AuditEntry, Role
from organisations.session import DashboardMixin, require_role
from together import charts
from together.dashboard import DashboardPage, add_service_error, call_service, list_query, sort_links
from together.exceptions import ApplicationError, ValidationFailed
from together.money import MoneyParseError, parse_amount_cents
from together.templatetags.humanize_cents import dollars


def _months_chart(chart_id, title, description, months, *, compare=None, label_this="This year", label_last="Last year"):
    """Stacked monetary / in-kind columns per month (a selector's months), optionally against `compare`."""
    series = [{"label": f"Monetary{'' if compare is None else ' ' + label_this.lower()}", "tone": "monetary",
               "values": [m["monetary_cents"] for m in months]},
              {"label": f"In-kind{'' if compare is None else ' ' + label_this.lower()}", "tone": "inkind",
               "values": [m["in_kind_cents"] for m in months]}]
    other = None if compare is None else [
        {"label": f"Monetary {label_last.lower()}", "tone": "monetary", "values": [m["monetary_cents"] for m in compare]},
        {"label": f"In-kind {label_last.lower()}", "tone": "inkind", "values": [m["in_kind_cents"] for m in compare]}]
    return charts.columns(chart_id=chart_id, title=title, description=description,
                          categories=[f"{m['month']:%b %y}" if compare is None else f"{m['month']:%b}" for m in months],
                          series=series, compare=other, fmt=dollars, count_label="Gifts", counts=[m["gifts"] for m in months],
                          labels=None if compare is not None else charts.month_labels([m["month"] for m in months]))


class HomeView(DashboardMixin, View):
    def get(self, request):
        org = request.organisation
        today = timezone.localdate()
        start, end = financial_year_of(today)
        year = year_by_month(organisation=org, start=start, end=end)
        this, last = year["this_totals"], year["last_totals"]
        chart = _months_chart(
            "gifts-by-month", f"Gifts by month, FY {start:%Y}-{end:%y} against FY {start.year - 1}-{start:%y}",
            f"Counted gifts per month of this financial year ({dollars(this['total_cents'])} so far), monetary and in-kind "
            f"stacked, each beside the same month of last year ({dollars(last['total_cents'])} in all).",
            year["this"], compare=year["last"], label_this="this year", label_last="last year")
        return render(request, "donations/home.html", {
            "nav": "home", "page_title": "Home", "period": (start, end), "last_period": year["last_period"],
            "totals": {"monetary_cents": this["monetary_cents"], "in_kind_cents": this["in_kind_cents"], "count": this["gifts"]},
            "last_totals": last, "chart": chart,
            "recent": self.scoped(Donation).select_related("donor").order_by("-created_at", "-id")[:10],
            "alerts": compliance_alerts(organisation=org, today=today),
        })


class CapAlertHistoryView(DashboardMixin, View):
    """Donors who came near a cap in periods that have ended (the home page shows open periods)."""

    def get(self, request):
        return render(request, "donations/cap_history.html", {
            "nav": "home", "page_title": "Cap alerts of past periods",
            "alerts": near_cap_history(organisation=request.organisation, today=timezone.localdate()),
        })


# --- donors -----------------------------------------------------------------------

# The donors list's sortable columns (DonorFilterSet.orderings) and the direction each starts in.
DONOR_SORTS = {"name": "", "donations_total_cents": "-", "last_donation_date": "-"}
DONOR_SORT_CHOICES = [("-created_at", "Newest records first"), ("name", "Name, A to Z"), ("-name", "Name, Z to A"),
                      ("-donations_total_cents", "Total, largest first"), ("donations_total_cents", "Total, smallest first"),
                      ("-last_donation_date", "Last gift, latest first"), ("last_donation_date", "Last gift, earliest first")]


class DonorListView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, self.scoped(Donor), filterset_class=DonorFilterSet)
        return render(request, "donations/donor_list.html", {
            "nav": "donors", "page_title": "Donors", "q": request.GET.get("q", ""), **page.context(),
            "sorts": sort_links(request, page.ordering_name, DONOR_SORTS), "sort_choices": DONOR_SORT_CHOICES,
            "list_query": list_query(request),
        })


class DonorSearchView(DashboardMixin, View):
    """Type-ahead (htmx): donors matching the typed text."""

    def get(self, request):
        donors = donor_search(organisation=request.organisation, q=request.GET.get("q", "")) if len(request.GET.get("q", "").strip()) >= 2 else []
        return render(request, "donations/_donor_options.html", {"donors": donors, "q": request.GET.get("q", "")})


class DonorCreateView(DashboardMixin, View):
    required_role = Role.EDITOR  # a form only writers can send: 403 at the URL for a VIEWER

    def get(self, request):
        return render(request, "donations/donor_form.html", {"form": DonorForm(organisation=request.organisation), "nav": "donors", "page_title": "Add donor"})

    def post(self, request):
        form = DonorForm(request.POST, organisation=request.organisation)
        existing_id = None
        if form.is_valid():
            try:
                donor = services.donor_create(organisation=request.organisation, actor=request.actor, **form.service_kwargs())
                messages.success(request, f"Donor {donor.display_name} created.")
                return redirect("donor-detail", donor.id)
            except ApplicationError as exc:
                existing_id = exc.extra.get("existing_id")
                add_service_error(form, exc)
        return render(request, "donations/donor_form.html", {"form": form, "existing_id": existing_id, "nav": "donors", "page_title": "Add donor"})


class DonorEditView(DashboardMixin, View):
    required_role = Role.EDITOR

    def get(self, request, pk):
        donor = self.get_scoped_or_404(Donor, pk)
        form = DonorForm(initial={k: getattr(donor, k) for k in DonorForm.base_fields}, organisation=request.organisation,
                         custom_values=donor.custom_fields)
        return render(request, "donations/donor_form.html", {"form": form, "donor": donor, "nav": "donors", "page_title": "Edit donor"})

    def post(self, request, pk):
        donor = self.get_scoped_or_404(Donor, pk)
        form = DonorForm(request.POST, organisation=request.organisation)
        if form.is_valid() and call_service(form, services.donor_update, organisation=request.organisation, actor=request.actor,
                                            donor_id=donor.id, **form.service_kwargs()):
            messages.success(request, "Donor saved.")
            return redirect("donor-detail", donor.id)
        return render(request, "donations/donor_form.html", {"form": form, "donor": donor, "nav": "donors", "page_title": "Edit donor"})


def _donor_giving_chart(donor, months):
    first, last = months[0]["month"], months[-1]["month"]
    return _months_chart("donor-giving", "Giving by month",
                         f"{donor.display_name}'s counted gifts per month from {first:%B %Y} to {last:%B %Y}, monetary and in-kind stacked "
                         f"({dollars(sum(m['total_cents'] for m in months))} in all).", months)


def _donor_gauges(compliance: list[dict]) -> list:
    """Per jurisdiction with a cap or a threshold in force: the cap used, the threshold,
    the room left (compliance.selectors.donor_compliance asked compliance.rules for them)."""
    gauges = []
    for c in compliance:
        if c["cap_cents"] is None and c["threshold_cents"] is None:
            continue
        used = c["cap_total_cents"] if c["cap_cents"] is not None else c["total_cents"]
        start, end = (c["cap_period_start"], c["cap_period_end"]) if c["cap_cents"] is not None else (c["period_start"], c["period_end"])
        gauges.append(charts.gauge(chart_id=f"gauge-{c['jurisdiction'].lower()}", title=f"{c['jurisdiction']}: cap and threshold",
                                   used=used, cap=c["cap_cents"], threshold=c["threshold_cents"], remaining=c["cap_remaining_cents"],
                                   fmt=dollars, period=f"{start} – {end}"))
    return gauges


class DonorDetailView(DashboardMixin, View):
    def get(self, request, pk):
        from compliance.models import ComplianceBreach, DisclosureObligation

        donor = self.get_scoped_or_404(Donor, pk)
        as_of = timezone.localdate()
        if request.GET.get("period"):
            try:
                import datetime as dt

                as_of = dt.date.fromisoformat(request.GET["period"])
                services.check_date(as_of, "period")
            except ValueError:
                messages.error(request, "period must be a date, YYYY-MM-DD.")
                as_of = timezone.localdate()
            except ValidationFailed as exc:
                messages.error(request, exc.message)
                as_of = timezone.localdate()
        compliance = donor_compliance(organisation=request.organisation, donor=donor, as_of=as_of)
        return render(request, "donations/donor_detail.html", {
            "donor": donor, "nav": "donors", "page_title": donor.display_name, "as_of": as_of,
            "gifts": self.scoped(Donation).filter(donor=donor).select_related("campaign", "donor").order_by("-donation_date", "-created_at")[:50],
            "compliance": compliance,
            "giving": _donor_giving_chart(donor, donor_gifts_by_month(organisation=request.organisation, donor_id=donor.id, end=as_of)),
            "gauges": _donor_gauges(compliance),
            "obligations": self.scoped(DisclosureObligation).filter(donor=donor).order_by("-period_start")[:20],
            "breaches": self.scoped(ComplianceBreach).filter(donor=donor).order_by("-created_at")[:20],
        })


class DuplicatesView(DashboardMixin, View):
    def get(self, request):
        pairs = donor_duplicate_candidates(organisation=request.organisation, limit=50)
        ids = {i for p in pairs for i in p["donor_ids"]}
        donors = {d.id: d for d in self.scoped(Donor).filter(pk__in=ids)}
        rows = [{"a": donors[p["donor_ids"][0]], "b": donors[p["donor_ids"][1]], "reason": p["reason"]}
                for p in pairs if p["donor_ids"][0] in donors and p["donor_ids"][1] in donors]
        return render(request, "donations/duplicates.html", {"pairs": rows, "nav": "donors", "page_title": "Duplicates"})

    def post(self, request):
        try:
            survivor = services.donor_merge(organisation=request.organisation, actor=request.actor,
                                            survivor_id=request.POST.get("survivor_id", ""), duplicate_id=request.POST.get("duplicate_id", ""))
            messages.success(request, f"Merged into {survivor.display_name}; every gift moved.")
            return redirect("donor-detail", survivor.id)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("donor-duplicates")


# --- recording gifts ----------------------------------------------------------------

class GiftCreateView(DashboardMixin, View):
    """The most-used screen: record a cash, cheque, bank transfer or in-kind gift."""

    required_role = Role.EDITOR

    def context(self, request, form, donor=None, existing=None):
        return {"form": form, "donor": donor, "existing": existing, "nav": "gift", "page_title": "Record a gift",
                "revenue_codes": revenue_code_suggestions(organisation=request.organisation)}

    def get(self, request):
        initial = {k: request.GET[k] for k in ("campaign", "revenue_code", "donation_date", "method") if request.GET.get(k)}
        donor = None
        if request.GET.get("donor"):
            donor = self.scoped(Donor).filter(pk=request.GET["donor"]).first()
            if donor:
                initial["donor"] = donor.id
        form = GiftForm(initial=initial, organisation=request.organisation)
        return render(request, "donations/gift_form.html", self.context(request, form, donor))

    def post(self, request):
        form = GiftForm(request.POST, organisation=request.organisation)
        donor = existing = None
        if form.is_valid():
            new_donor = form.new_donor_kwargs() if form.cleaned_data.get("new_donor") else None
            try:
                donation = services.donation_record_with_donor(
                    organisation=request.organisation, actor=request.actor, new_donor=new_donor,
                    donor_id=None if new_donor else form.cleaned_data.get("donor"), **form.donation_kwargs())
            except ApplicationError as exc:
                add_service_error(form, exc)
                if exc.extra.get("existing_id"):  # a new donor with a known email: offer the existing record instead
                    existing = self.scoped(Donor).filter(pk=exc.extra["existing_id"]).first()
            else:
                messages.success(request, f"Recorded ${donation.amount_cents / 100:,.2f} from {donation.donor.display_name}.")
                params = {"donation_date": form.cleaned_data["donation_date"].isoformat(), "method": form.cleaned_data["method"]}
                if form.cleaned_data.get("campaign"):
                    params["campaign"] = form.cleaned_data["campaign"]
                if form.cleaned_data.get("revenue_code"):
                    params["revenue_code"] = form.cleaned_data["revenue_code"]
                from urllib.parse import urlencode

                return redirect(f"{request.path}?{urlencode(params)}")
        if form.data.get("donor"):
            donor = self.scoped(Donor).filter(pk=form.data.get("donor")).first()
        return render(request, "donations/gift_form.html", self.context(request, form, donor, existing), status=400)


class CapRoomView(DashboardMixin, View):
    """The remaining cap room for the donor, code and date being typed (htmx)."""

    def get(self, request):
        import datetime as dt

        donor = self.scoped(Donor).filter(pk=request.GET.get("donor", "")).first()
        context = {"donor": donor}
        try:
            day = dt.date.fromisoformat(request.GET.get("donation_date", ""))
            services.check_date(day, "donation_date")  # the gift form would refuse it: no cap room to show
        except (ValueError, ValidationFailed):
            day = None
        if donor and day:
            jurisdiction = jurisdiction_preview(organisation=request.organisation, code=request.GET.get("revenue_code"))
            room = cap_room(donor_id=donor.id, jurisdiction=jurisdiction, day=day)
            context.update({"jurisdiction": jurisdiction, "room": room, "amount_cents": None})
            amount = request.GET.get("amount", "").strip()
            if amount:
                try:
                    context["amount_cents"] = parse_amount_cents(amount)
                except MoneyParseError as exc:  # half-typed amounts are normal here: say so, judge nothing
                    context["amount_error"] = exc.message
            if room and context["amount_cents"] is not None:
                context["over"] = context["amount_cents"] > room["remaining"]
        return render(request, "donations/_cap_room.html", context)


# --- batches ------------------------------------------------------------------------------

class BatchListView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, self.scoped(DepositBatch))
        return render(request, "donations/batch_list.html", {"nav": "batches", "page_title": "Batches", **page.context()})


class BatchEditView(DashboardMixin, View):
    """A deposit of many cheques against control totals: save as draft, post when they match."""

    def load(self, request, pk):
        return self.get_scoped_or_404(DepositBatch, pk) if pk else None

    def render_page(self, request, batch, header, rows, status=200):
        return render(request, "donations/batch_form.html", {"batch": batch, "header": header, "rows": rows,
                                                             "nav": "batches", "page_title": "Batch entry"}, status=status)

    def get(self, request, pk=None):
        if pk is None:
            require_role(request, Role.EDITOR)  # a new batch is a form only writers can send
        batch = self.load(request, pk)
        if batch is None:
            header = BatchHeaderForm(initial={"deposit_date": timezone.localdate(), "payment_method": "CHEQUE"})
            rows = BatchRowFormSet(initial=[{} for _ in range(5)], prefix="rows")
        else:
            header = BatchHeaderForm(initial={"reference": batch.reference, "deposit_date": batch.deposit_date,
                                              "payment_method": batch.payment_method, "control_count": batch.control_count,
                                              "control_total": cents_to_dollars(batch.control_total_cents)})
            initial = [{"donor": r.donor.email or r.donor_id, "amount": cents_to_dollars(r.amount_cents), "reference": r.reference,
                        "donation_date": r.donation_date, "revenue_code": r.revenue_code} for r in batch.rows.select_related("donor")]
            rows = BatchRowFormSet(initial=initial or [{}], prefix="rows")
        return self.render_page(request, batch, header, rows)

    def post(self, request, pk=None):
        batch = self.load(request, pk)
        if batch is not None and not batch.can_edit:
            messages.error(request, batch.refusal_for("edit").message)
            return redirect("batch-edit", batch.id)
        header = BatchHeaderForm(request.POST)
        rows = BatchRowFormSet(request.POST, prefix="rows")
        if "add_rows" in request.POST:
            data = request.POST.copy()
            total = data.get("rows-TOTAL_FORMS", "0").strip()
            if not (total.isascii() and total.isdigit() and len(total) <= 6):
                header.add_error(None, "The rows of this form arrived damaged: reload the page and enter them again.")
                return self.render_page(request, batch, header, rows, status=400)
            data["rows-TOTAL_FORMS"] = str(min(int(total) + 5, services.MAX_BATCH_ROWS))
            return self.render_page(request, batch, BatchHeaderForm(data), BatchRowFormSet(data, prefix="rows"))
        if not (header.is_valid() and rows.is_valid()):
            for error in rows.non_form_errors():  # e.g. a damaged rows-TOTAL_FORMS: say so, not only a 400
                header.add_error(None, error)
            return self.render_page(request, batch, header, rows, status=400)
        parsed, ok = [], True
        for index, row in enumerate(rows.forms):
            d = row.cleaned_data
            if not d or not (d.get("donor") or d.get("amount")):
                continue
            donor = donor_by_reference(organisation=request.organisation, reference=d.get("donor"))
            if donor is None:
                row.add_error("donor", "No donor with this email or id. Add the donor first.")
                ok = False
                continue
            if not d.get("amount"):
                row.add_error("amount", "Enter the amount.")
                ok = False
                continue
            parsed.append({"donor_id": donor.id, "amount_cents": d["amount"], "reference": d.get("reference"),
                           "donation_date": d.get("donation_date") or header.cleaned_data["deposit_date"], "revenue_code": d.get("revenue_code")})
        if not ok:
            return self.render_page(request, batch, header, rows, status=400)
        h = header.cleaned_data
        try:
            submitted = services.batch_submit(
                organisation=request.organisation, actor=request.actor, post="post" in request.POST,
                batch_id=batch.id if batch else None, reference=h["reference"], deposit_date=h["deposit_date"],
                payment_method=h["payment_method"], control_count=h["control_count"], control_total_cents=h["control_total"],
                rows=parsed,
            )
        except ApplicationError as exc:
            header.add_error(None, exc.message)
            return self.render_page(request, batch, header, rows, status=400)
        saved = submitted.batch
        if submitted.post_refusal is not None:
            messages.error(request, f"Not posted (saved as a draft): {submitted.post_refusal.message}")
        elif submitted.posted:
            messages.success(request, f"Batch {saved.reference} posted: {len(parsed)} gift(s).")
        else:
            messages.success(request, "Draft saved.")
        return redirect("batch-edit", saved.id)


# --- donations -------------------------------------------------------------------------------

# The donations list's sortable columns (DonationFilterSet.orderings) and the direction each starts in.
DONATION_SORTS = {"donation_date": "-", "donor": "", "amount_cents": "-"}
# What a row of donations/_donation_table.html shows (a wide row costs a third of the page's query; a column
# added to the table needs its field here, or each row reads it on its own: test_list_sorting counts the queries).
DONATION_ROW_FIELDS = ("id", "created_at", "donation_date", "amount_cents", "donation_type", "payment_method", "source", "status",
                       "donor_id", "donor__id", "donor__first_name", "donor__last_name", "donor__organisation_name", "donor__email")
DONATION_SORT_CHOICES = [("-donation_date", "Gift date, newest first"), ("donation_date", "Gift date, oldest first"),
                         ("-amount_cents", "Amount, largest first"), ("amount_cents", "Amount, smallest first"),
                         ("donor", "Donor, A to Z"), ("-donor", "Donor, Z to A")]


class DonationListView(DashboardMixin, View):
    def get(self, request):
        queryset = self.scoped(Donation).select_related("donor").only(*DONATION_ROW_FIELDS)
        page = DashboardPage(request, queryset, filterset_class=DonationFilterSet)
        return render(request, "donations/donation_list.html", {
            "nav": "donations", "page_title": "Donations", "statuses": Status.choices, "sources": Source.choices,
            "g": request.GET, **page.context(),
            "sorts": sort_links(request, page.ordering_name, DONATION_SORTS), "sort_choices": DONATION_SORT_CHOICES,
            "list_query": list_query(request),
        })


# The void and refund forms share a page and a field name (reason): distinct ids keep each label on its own input.
VOID_IDS, REFUND_IDS = "void_%s", "refund_%s"


class DonationDetailView(DashboardMixin, View):
    def page(self, request, donation, edit_form=None, void_form=None, refund_form=None, status=200):
        if edit_form is None:
            edit_form = DonationEditForm(initial={
                "amount": cents_to_dollars(donation.amount_cents), "donation_date": donation.donation_date,
                "reference": donation.reference, "revenue_code": donation.revenue_code,
                "in_kind_description": donation.in_kind_description, "notes": donation.notes},
                organisation=request.organisation, custom_values=donation.custom_fields)
        if donation.donation_type != "IN_KIND":
            edit_form.fields.pop("in_kind_description", None)  # a monetary gift has no description to edit
        refund_form = refund_form or RefundForm(auto_id=REFUND_IDS)
        if donation.source not in services.CARD_SOURCES:
            refund_form.fields.pop("amount", None)  # a manual gift is refunded in full
        return render(request, "donations/donation_detail.html", {
            "donation": donation, "nav": "donations", "page_title": f"Donation {donation.id}",
            "edit_form": edit_form, "void_form": void_form or VoidForm(auto_id=VOID_IDS), "refund_form": refund_form,
            "audit": self.scoped(AuditEntry).filter(object_type="donation", object_id=donation.id).order_by("created_at"),
            "revenue_codes": revenue_code_suggestions(organisation=request.organisation),
        }, status=status)

    def get(self, request, pk):
        return self.page(request, self.get_scoped_or_404(Donation.objects.select_related("donor", "campaign"), pk))

    def post(self, request, pk):
        donation = self.get_scoped_or_404(Donation.objects.select_related("donor", "campaign"), pk)
        org, actor = request.organisation, request.actor
        action = request.POST.get("action")
        if action == "void":
            form = VoidForm(request.POST, auto_id=VOID_IDS)
            if form.is_valid() and call_service(form, services.donation_void, organisation=org, actor=actor, donation_id=pk, **form.cleaned_data):
                messages.success(request, "Donation voided; it stays on record and out of every total.")
                return redirect("donation-detail", pk)
            return self.page(request, donation, void_form=form, status=400)
        if action == "refund":
            form = RefundForm(request.POST, auto_id=REFUND_IDS)
            if donation.source not in services.CARD_SOURCES:
                form.fields.pop("amount", None)
            if form.is_valid():
                data = dict(form.cleaned_data)
                amount = data.pop("amount", None)
                refunded = call_service(form, services.donation_refund, organisation=org, actor=actor, donation_id=pk,
                                        amount_cents=amount, **data)
            else:
                refunded = None
            if refunded:
                messages.success(request, "Donation refunded." if refunded.status == Status.REFUNDED else
                                 f"Refunded {dollars(refunded.refunded_cents)} of {dollars(refunded.amount_cents)} so far; "
                                 "the gift counts what was kept.")
                return redirect("donation-detail", pk)
            return self.page(request, donation, refund_form=form, status=400)
        form = DonationEditForm(request.POST, organisation=org)
        if form.is_valid():
            d = form.cleaned_data
            changes = {"amount_cents": d["amount"], "donation_date": d["donation_date"], "reference": d.get("reference") or None,
                       "revenue_code": d.get("revenue_code") or None, "notes": d.get("notes") or None}
            if donation.donation_type == "IN_KIND":
                changes["in_kind_description"] = d.get("in_kind_description") or donation.in_kind_description
            if form.custom_field_definitions:
                changes["custom_fields"] = custom_field_values(form)
            if call_service(form, services.donation_update, organisation=org, actor=actor, donation_id=pk, **changes):
                messages.success(request, "Donation saved.")
                return redirect("donation-detail", pk)
        return self.page(request, donation, edit_form=form, status=400)


# --- campaigns -----------------------------------------------------------------------------

class CampaignListView(DashboardMixin, View):
    def get(self, request):
        page = DashboardPage(request, self.scoped(Campaign))
        rollups = campaign_rollups(organisation=request.organisation, campaign_ids=[c.id for c in page.rows])
        rows = [{"campaign": c, **campaign_progress(rollups.get(c.id), c.goal_cents)} for c in page.rows]
        ctx = page.context() | {"rows": rows}
        return render(request, "donations/campaign_list.html", {"nav": "campaigns", "page_title": "Campaigns", **ctx})


def _campaign_charts(campaign, rollup, weeks) -> list:
    progress = charts.progress(chart_id="campaign-progress", title=f"{campaign.name}: toward the goal",
                               raised=rollup["raised_cents"], goal=campaign.goal_cents, percent=rollup["percent"], fmt=dollars)
    if not weeks:
        return [progress]
    by_week = charts.columns(
        chart_id="campaign-weeks", title="Gifts by week",
        description=f"Counted gifts to {campaign.name} per week (weeks start on Monday), the {len(weeks)} weeks to its latest gift.",
        categories=[f"{w['week']:%-d %b}" for w in weeks],
        series=[{"label": "Raised", "tone": "gifts", "values": [w["raised_cents"] for w in weeks]}],
        fmt=dollars, count_label="Gifts", counts=[w["gifts"] for w in weeks])
    return [progress, by_week]


# The campaign page lists the 20 source codes and links that raised most (the API up to 500; the campaign
# summary report has every source code, by month).
CAMPAIGN_PAGE_SOURCES = 20


class CampaignSourcesView(DashboardMixin, View):
    """The campaign page's "Where the gifts came from" tables (donations.selectors.campaign_sources).
    The page loads them into its slot after it has shown (htmx), as the donor page does its plans
    and receipts: they read every counted gift of the campaign (50,000 on the bench campaign),
    the page's figures only the rollups. Without htmx (the slot's link), a page of their own."""

    def get(self, request, pk):
        campaign = self.get_scoped_or_404(Campaign, pk)
        sources = campaign_sources(organisation=request.organisation, campaign_id=campaign.id, limit=CAMPAIGN_PAGE_SOURCES)
        context = {"campaign": campaign, "sources": sources, "nav": "campaigns",
                   "page_title": f"{campaign.name}: where the gifts came from"}
        return render(request, "donations/campaign_sources.html" if request.htmx else "donations/campaign_sources_page.html", context)


class CampaignEditView(DashboardMixin, View):
    def get(self, request, pk=None):
        if pk is None:
            require_role(request, Role.EDITOR)
        campaign = self.get_scoped_or_404(Campaign, pk) if pk else None
        initial = {}
        if campaign:
            initial = {"name": campaign.name, "description": campaign.description, "goal": cents_to_dollars(campaign.goal_cents),
                       "starts_at": campaign.starts_at, "ends_at": campaign.ends_at}
        rollup, pictures = None, []
        if campaign:
            rollup = campaign_progress(campaign_rollups(organisation=request.organisation, campaign_ids=[pk]).get(pk), campaign.goal_cents)
            pictures = _campaign_charts(campaign, rollup, campaign_gifts_by_week(organisation=request.organisation, campaign_id=pk))
        return render(request, "donations/campaign_form.html", {"form": CampaignForm(initial=initial), "campaign": campaign, "rollup": rollup,
                                                                "pictures": pictures, "nav": "campaigns",
                                                                "page_title": campaign.name if campaign else "New campaign"})

    def post(self, request, pk=None):
        campaign = self.get_scoped_or_404(Campaign, pk) if pk else None
        if campaign and "archive" in request.POST:
            services.campaign_archive(organisation=request.organisation, actor=request.actor, campaign_id=campaign.id)
            messages.success(request, "Campaign archived: it takes no new gifts.")
            return redirect("campaign-edit", campaign.id)
        form = CampaignForm(request.POST)
        if form.is_valid():
            if campaign:
                saved = call_service(form, services.campaign_update, organisation=request.organisation, actor=request.actor,
                                     campaign_id=campaign.id, **form.service_kwargs())
            else:
                saved = call_service(form, services.campaign_create, organisation=request.organisation, actor=request.actor, **form.service_kwargs())
            if saved:
                messages.success(request, "Campaign saved.")
                return redirect("campaign-edit", saved.id)
        return render(request, "donations/campaign_form.html", {"form": form, "campaign": campaign, "nav": "campaigns", "page_title": "Campaign"}, status=400)


EDITOR = Role.EDITOR

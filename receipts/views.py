"""Dashboard pages of receipts: Settings → Receipts (ADMIN), Finance → Receipts
(register and bulk runs), the gift's and the donor's receipts (htmx fragments
loaded by templates/donations/*_detail.html; donations never imports receipts),
and the PDFs. Every change goes through receipts.services."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View

from compliance.rules import financial_year_of
from donations.models import Donation, Donor, Status
from organisations.models import Role
from organisations.session import DashboardMixin, require_role
from receipts import services
from receipts.forms import AcknowledgementForm, ReceiptRunForm, ReceiptSettingsForm, WithdrawForm
from receipts.models import Receipt, ReceiptRun, ReceiptSettings, ReceiptStatus, RunStatus
from together.dashboard import call_service
from together.exceptions import ApplicationError


def _pdf_response(content: bytes, file_name: str, *, inline: bool = False) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{file_name}"'
    response["Cache-Control"] = "private, no-store"
    return response


class ReceiptSettingsView(DashboardMixin, View):
    """Settings → Receipts: what every receipt states, and when receipts are issued."""

    required_role = Role.ADMIN
    write_role = Role.ADMIN

    def page(self, request, form=None, status=200):
        current = self.scoped(ReceiptSettings).first()
        if form is None:
            initial = {f: getattr(current, f) for f in services.SETTINGS_FIELDS} if current else {
                "legal_name": request.organisation.name, "deductibility": "NONE", "mode": "ON_RECORD"}
            form = ReceiptSettingsForm(initial=initial)
        return render(request, "receipts/settings.html", {
            "form": form, "current": current, "nav": "settings", "page_title": "Receipts",
        }, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        form = ReceiptSettingsForm(request.POST)
        if form.is_valid() and call_service(form, services.receipt_settings_save, organisation=request.organisation,
                                            actor=request.actor, **form.cleaned_data):
            messages.success(request, "Receipt settings saved. Receipts issued from now on state them; those already issued do not change.")
            return redirect("settings-receipts")
        return self.page(request, form, status=400)


class ReceiptsFinanceView(DashboardMixin, View):
    """Finance → Receipts: the register (latest first), bulk runs and their progress."""

    def page(self, request, form=None, status=200):
        receipts = (self.scoped(Receipt).select_related("donor").order_by("-number")
                    .only("id", "number", "kind", "status", "issued_at", "amount_cents", "donation_id", "donor_id",
                          "donor__first_name", "donor__last_name", "donor__organisation_name", "donor__email",
                          "withdraw_reason", "emailed_at")[:50])
        today = timezone.localdate()
        fy_start, fy_end = financial_year_of(today)
        waiting = self.scoped(Donation).filter(status=Status.CONFIRMED, acknowledgement_status="NEEDS_RECEIPT").count()
        return render(request, "receipts/finance.html", {
            "receipts": receipts, "runs": self.scoped(ReceiptRun).order_by("-created_at")[:10],
            "form": form or ReceiptRunForm(initial={"date_from": fy_start, "date_to": min(today, fy_end)}),
            "settings": self.scoped(ReceiptSettings).first(), "waiting": waiting, "nav": "receipts",
            "page_title": "Receipts",
        }, status=status)

    def get(self, request):
        return self.page(request)

    def post(self, request):
        form = ReceiptRunForm(request.POST)
        if form.is_valid():
            run = call_service(form, services.receipt_run_start, organisation=request.organisation, actor=request.actor,
                               date_from=form.cleaned_data["date_from"], date_to=form.cleaned_data["date_to"])
            if run:
                messages.success(request, f"Bulk run started: {run.total} gift(s) to receipt.")
                return redirect("receipts-finance")
        return self.page(request, form, status=400)


class ReceiptRunFragmentView(DashboardMixin, View):
    """One run's progress (polled by htmx while it runs)."""

    def get(self, request, run_id):
        run = self.get_scoped_or_404(ReceiptRun, run_id)
        return render(request, "receipts/_run.html", {"run": run, "polling": run.status in (RunStatus.QUEUED, RunStatus.RUNNING)})


class ReceiptDownloadView(DashboardMixin, View):
    def get(self, request, receipt_id):
        receipt = self.get_scoped_or_404(Receipt, receipt_id)
        return _pdf_response(services.receipt_pdf(receipt), receipt.file_name, inline=request.GET.get("view") == "1")


class DonorStatementView(DashboardMixin, View):
    """The donor's annual statement: one PDF for a financial year's receipted gifts."""

    def get(self, request, donor_id):
        """`?year=2025` is the financial year 2025-26 (default: the current one)."""
        donor = self.get_scoped_or_404(Donor, donor_id)
        year = request.GET.get("year", "")
        year = int(year) if year.isdigit() else financial_year_of(timezone.localdate())[0].year
        try:
            content = services.annual_statement_pdf(organisation=request.organisation, donor_id=donor.id, year=year)
        except ApplicationError as exc:
            raise Http404(exc.message) from exc
        return _pdf_response(content, f"statement-{year}-{str(year + 1)[2:]}-{donor.id}.pdf")


class DonationReceiptsFragmentView(DashboardMixin, View):
    """The gift page's receipts: the standing one and its history, download,
    issue now, resend, withdraw, and whether the gift is to be receipted."""

    def page(self, request, donation, *, ack_form=None, withdraw_form=None, error=None, status=200):
        receipts = list(self.scoped(Receipt).filter(donation=donation).order_by("-number"))
        return render(request, "receipts/_donation.html", {
            "donation": donation, "receipts": receipts, "standing": next((r for r in receipts if r.status == ReceiptStatus.ISSUED), None),
            "ack_form": ack_form or AcknowledgementForm(initial={"status": donation.acknowledgement_status}),
            "withdraw_form": withdraw_form or WithdrawForm(), "error": error,
            "settings": self.scoped(ReceiptSettings).first(),
        }, status=status)

    def get(self, request, donation_id):
        return self.page(request, self.get_scoped_or_404(Donation, donation_id))

    def post(self, request, donation_id):
        donation = self.get_scoped_or_404(Donation, donation_id)
        org, actor, action = request.organisation, request.actor, request.POST.get("action")
        done, ack_form, withdraw_form, error = None, None, None, None
        try:
            if action == "issue":
                receipt = services.receipt_issue(organisation=org, actor=actor, donation_id=donation.id)
                done = f"Receipt {receipt.number} issued."
            elif action == "resend":
                receipt = services.receipt_resend(organisation=org, actor=actor, donation_id=donation.id)
                done = f"Receipt {receipt.number} will be emailed to {receipt.donor_snapshot.get('email')} again."
            elif action == "ack":
                ack_form = AcknowledgementForm(request.POST)
                if ack_form.is_valid() and call_service(ack_form, services.donation_acknowledgement_set, organisation=org,
                                                        actor=actor, donation_id=donation.id, status=ack_form.cleaned_data["status"]):
                    done, ack_form = "Saved.", None
            elif action == "withdraw":
                withdraw_form = WithdrawForm(request.POST)
                standing = self.scoped(Receipt).filter(donation=donation, status=ReceiptStatus.ISSUED).first()
                if standing is None:
                    raise Http404("No standing receipt.")
                if withdraw_form.is_valid() and call_service(withdraw_form, services.receipt_withdraw, organisation=org, actor=actor,
                                                             receipt_id=standing.id, reason=withdraw_form.cleaned_data["reason"]):
                    done, withdraw_form = f"Receipt {standing.number} withdrawn.", None
            else:
                error = "Unknown action."
        except ApplicationError as exc:
            error = exc.message
        if not request.htmx:
            if done:
                messages.success(request, done)
            elif error:
                messages.error(request, error)
            return redirect("donation-detail", donation.id)
        donation = self.get_scoped_or_404(Donation, donation.id)
        return self.page(request, donation, ack_form=ack_form, withdraw_form=withdraw_form, error=error)


class DonorReceiptsFragmentView(DashboardMixin, View):
    """The donor page's receipts, annual statements by financial year, and the donor's receipting default."""

    def page(self, request, donor, *, form=None, saved=False):
        receipts = list(self.scoped(Receipt).filter(donor=donor).order_by("-number")[:25])
        years = sorted({financial_year_of(d)[0].year for d in self.scoped(Receipt).filter(
            donor=donor, status=ReceiptStatus.ISSUED).values_list("donation_date", flat=True).distinct()}, reverse=True)
        return render(request, "receipts/_donor.html", {
            "donor": donor, "receipts": receipts, "years": [(y, f"{y}-{str(y + 1)[2:]}") for y in years],
            "form": form or AcknowledgementForm(initial={"status": donor.acknowledgement_default}), "saved": saved,
        })

    def get(self, request, donor_id):
        return self.page(request, self.get_scoped_or_404(Donor, donor_id))

    def post(self, request, donor_id):
        donor = self.get_scoped_or_404(Donor, donor_id)
        require_role(request, Role.EDITOR)
        form = AcknowledgementForm(request.POST)
        saved = bool(form.is_valid() and call_service(form, services.donor_acknowledgement_default_set, organisation=request.organisation,
                                                      actor=request.actor, donor_id=donor.id, status=form.cleaned_data["status"]))
        if not request.htmx:
            if saved:
                messages.success(request, "Receipting default saved.")
            return redirect("donor-detail", donor.id)
        return self.page(request, self.get_scoped_or_404(Donor, donor.id), form=None if saved else form, saved=saved)

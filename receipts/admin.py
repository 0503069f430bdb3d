"""Receipts in the staff admin: read-only (a receipt never changes once issued).
Withdraw (with a reason) and re-send are actions through receipts.services, by
the records' writing role (EDITOR); the PDF is the one the donor was sent."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from organisations.admin_tenancy import ReadOnlyTenantAdmin, may
from receipts import services
from receipts.forms import WithdrawForm
from receipts.models import Receipt
from together.exceptions import ApplicationError
from together.templatetags.humanize_cents import dollars


def _each(modeladmin, request, queryset, call) -> tuple[int, list[str]]:
    """`call(receipt)` for each selected receipt the member may write, oldest number first."""
    done, refused = 0, []
    for receipt in queryset.select_related("organisation").order_by("organisation_id", "number"):
        if not may(request, receipt.organisation_id, "EDITOR"):
            continue
        try:
            call(receipt)
            done += 1
        except ApplicationError as exc:
            refused.append(f"Receipt {receipt.number}: {exc.message}")
    return done, refused


def _report(modeladmin, request, done: int, refused: list[str], what: str) -> None:
    modeladmin.message_user(request, f"{done} receipt(s) {what}.", messages.SUCCESS if done else messages.WARNING)
    for line in refused[:20]:
        modeladmin.message_user(request, line, messages.ERROR)


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["number", "issued_at", "donor_name", "amount", "donation_date", "kind", "status", "organisation"]
    list_display_links = ["number"]
    list_filter = ["status", "kind", "deductibility", "organisation"]
    search_fields = ["=number", "id", "donation__id", "donor__id", "donor__email", "donor__last_name", "donor__organisation_name"]
    ordering = ["-issued_at", "-number"]
    date_hierarchy = "issued_at"
    list_select_related = ["organisation"]
    fields = ["number", "kind", "status", "pdf_link", "organisation", "donation", "donor", "amount", "donation_date",
              "deductibility", "issued_at", "email_requested", "email_count", "emailed_at", "withdrawn_at", "withdraw_reason",
              "replaced_by", "issuer_snapshot", "donor_snapshot", "gift_snapshot"]
    readonly_fields = fields
    actions = ["withdraw_selected", "resend_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("pdf")  # the list never needs the PDFs

    @admin.display(description="Donor", ordering="donor_snapshot__name")
    def donor_name(self, receipt):
        return receipt.donor_snapshot.get("name", "")  # as the receipt states it

    @admin.display(description="Amount", ordering="amount_cents")
    def amount(self, receipt):
        return f"{dollars(receipt.amount_cents)} {receipt.currency}"

    @admin.display(description="PDF")
    def pdf_link(self, receipt):
        # The dashboard's download: it answers only within the member's organisation.
        return format_html('<a href="{}">{}</a>', reverse("receipt-pdf", args=[receipt.id]), receipt.file_name)

    @admin.action(description="Withdraw (asks for a reason; the receipt is kept, marked withdrawn)", permissions=["write"])
    def withdraw_selected(self, request, queryset):
        form = WithdrawForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            done, refused = _each(self, request, queryset, lambda r: services.receipt_withdraw(
                organisation=r.organisation, actor=request.actor, receipt_id=r.id, reason=reason))
            _report(self, request, done, refused, "withdrawn")
            return None
        return TemplateResponse(request, "admin/receipts/withdraw_selected.html", {
            **self.admin_site.each_context(request), "title": "Withdraw receipts", "form": form, "opts": self.model._meta,
            "receipts": queryset.order_by("number")[:200], "count": queryset.count(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "select_across": request.POST.get("select_across", "0"),
            # Only the rows the list let through (the member's), never ids echoed from the request.
            "selected": list(queryset.values_list("pk", flat=True)[:1000]),
        })

    @admin.action(description="Send again to the donor by email", permissions=["write"])
    def resend_selected(self, request, queryset):
        done, refused = _each(self, request, queryset, lambda r: services.receipt_resend(
            organisation=r.organisation, actor=request.actor, donation_id=r.donation_id))
        _report(self, request, done, refused, "queued to be sent again")

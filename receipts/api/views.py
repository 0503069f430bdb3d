"""GET /api/v1/donations/{id}/receipt (the standing receipt's PDF, READ) and
POST /api/v1/donations/{id}/receipt/resend (email it again, WRITE)."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from donations.models import Donation
from receipts.api.serializers import ReceiptSerializer
from receipts.models import Receipt, ReceiptStatus
from receipts.representations import render_receipt
from receipts.services import receipt_pdf, receipt_resend
from together.api.views import ApiView
from together.exceptions import NotFound


def _donation_or_404(request, donation_id: str) -> None:
    if not Donation.objects.for_organisation(request.organisation).filter(pk=donation_id).exists():
        raise NotFound("Donation not found.")


def _pdf_media_type(request) -> str:
    """application/pdf, unless Accept names application/octet-stream and not
    application/pdf (a client that wants any download as bytes)."""
    offered = {part.split(";")[0].strip().lower() for part in request.META.get("HTTP_ACCEPT", "").split(",")}
    if "application/octet-stream" in offered and "application/pdf" not in offered:
        return "application/octet-stream"
    return "application/pdf"


class DonationReceiptView(ApiView):
    schema_tags = ["donations"]
    required_scope = "READ"

    def perform_content_negotiation(self, request, force=False):
        # The answer is a PDF (errors are the JSON envelope), whatever Accept says.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        operation_id="donations_receipt_retrieve", summary="Download a donation's receipt",
        description="The standing (ISSUED) receipt of the donation as a PDF, exactly as issued and emailed "
                    "(an in-kind gift's acknowledgement likewise). 404 `not_found` when the donation has none "
                    "(not yet issued, withdrawn after a void or full refund, or DO_NOT_RECEIPT), or is another organisation's. "
                    "Sent as `application/pdf`; a client whose Accept names `application/octet-stream` (and not "
                    "`application/pdf`) gets the same bytes as `application/octet-stream`.",
        responses={
            (200, "application/pdf"): OpenApiResponse(response=OpenApiTypes.BINARY, description="The receipt PDF."),
            # The same bytes for a client that asks for a plain download (Accept: application/octet-stream):
            # what generated clients read as a file.
            (200, "application/octet-stream"): OpenApiResponse(response=OpenApiTypes.BINARY, description="The receipt PDF."),
        },
    )
    def get(self, request, donation_id: str):
        _donation_or_404(request, donation_id)
        receipt = (Receipt.objects.for_organisation(request.organisation)
                   .filter(donation_id=donation_id, status=ReceiptStatus.ISSUED).first())
        if receipt is None:
            raise NotFound("This donation has no standing receipt.")
        response = HttpResponse(receipt_pdf(receipt), content_type=_pdf_media_type(request))
        response["Content-Disposition"] = f'attachment; filename="{receipt.file_name}"'
        response["Cache-Control"] = "private, no-store"
        return response


class DonationReceiptResendView(ApiView):
    schema_tags = ["donations"]
    required_scope = "WRITE"

    @extend_schema(
        operation_id="donations_receipt_resend_create", summary="Email a donation's receipt again", request=None,
        description="Emails the standing receipt to the donor's address on the receipt again (sent in the background, "
                    "once per request). 404 `not_found` when the donation has no standing receipt; 400 `validation_failed` "
                    "(`param: email`) when the receipt has no email address.",
        responses={200: ReceiptSerializer},
    )
    def post(self, request, donation_id: str):
        _donation_or_404(request, donation_id)
        receipt = receipt_resend(organisation=request.organisation, actor=request.actor, donation_id=donation_id)
        return Response(render_receipt(receipt))

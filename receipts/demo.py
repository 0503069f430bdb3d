"""Demo receipts for `make run`: Riverbank Action's receipt settings (legal name,
the ABR's example ABN, address, signatory, wording; the political-party
deduction; receipted as each gift is recorded), and a bulk run over the
financial year of the latest demo gift (Finance → Receipts shows it), so a new
user sees receipt numbers on that year's gifts and downloads their PDFs; the
older years are there to try a bulk run on. (Every demo gift would be 2,500
PDFs: 97 s and 108 MB at 38 ms and 42 KB each, measured.)

Idempotent: the settings are saved once; a run starts only while the year has
a confirmed gift never receipted, so a second load issues nothing and prints
the same line. The demo donors' emails (example.org) go where development mail
goes (files under var/mail)."""
from __future__ import annotations

from compliance.rules import financial_year_of
from donations.models import Acknowledgement, Donation, Status
from receipts import services
from receipts.models import Receipt, ReceiptStatus
from together.demo import DemoContext, demo_step

DEMO_RECEIPT_SETTINGS = {
    "legal_name": "Riverbank Action Incorporated",
    "abn": "51 824 753 556",  # the ABR's published example ABN: a valid checksum, no real entity
    "address": "12 Riverbank Road\nAbbotsford VIC 3067",
    "signatory_name": "Jo Okafor",
    "signatory_title": "Treasurer",
    "wording": "Thank you for standing up for the riverbank. Your gift pays for organisers, leaflets and the "
               "campaign to protect the river's parklands.",
    "deductibility": "POLITICAL",
    "mode": "ON_RECORD",
}


def _settings(ctx: DemoContext, organisation) -> None:
    if services.receipt_settings_get(organisation=organisation) is None:
        services.receipt_settings_save(organisation=organisation, actor=ctx.actor, **DEMO_RECEIPT_SETTINGS)


def _unreceipted(organisation, first, last) -> bool:
    """A confirmed gift dated in [first, last] that never had a receipt and is not marked 'do not receipt'."""
    return (Donation.objects.for_organisation(organisation)
            .filter(status=Status.CONFIRMED, acknowledgement_status=Acknowledgement.NEEDS_RECEIPT, receipts__isnull=True,
                    donation_date__gte=first, donation_date__lte=last).exists())


@demo_step(order=160, name="receipts.receipts")
def demo_receipts(ctx: DemoContext) -> None:
    organisation = ctx.organisation
    _settings(ctx, organisation)
    latest = (Donation.objects.for_organisation(organisation).filter(status=Status.CONFIRMED)
              .order_by("-donation_date").values_list("donation_date", flat=True).first())
    if latest is None:
        ctx.report("Demo receipts: none yet (no confirmed gifts)")
        return
    first, last = financial_year_of(latest)
    if _unreceipted(organisation, first, last):
        run = services.receipt_run_start(organisation=organisation, actor=ctx.actor, date_from=first, date_to=last)
        services.receipt_run_execute(organisation=organisation, run_id=run.id)
    standing = Receipt.objects.for_organisation(organisation).filter(status=ReceiptStatus.ISSUED)
    numbers = standing.order_by("number").values_list("number", flat=True)
    ctx.report(f"Demo receipts: {standing.count()} issued for FY {first.year}-{str(last.year)[2:]} (numbers {numbers.first()} "
               f"to {numbers.last()}); PDFs on each gift's page, earlier years to issue in bulk at Finance → Receipts")

"""Reads with logic: forms and checkout links as the public pages, the
dashboard and the API need them."""
from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from compliance.models import Jurisdiction
from compliance.selectors import jurisdiction_preview
from donations.models import Donor
from engage.models import CheckoutLink, DonationForm, FormStatus, LinkStatus, Visibility
from engage.representations import FORM_FIELDS, LINK_FIELDS, render_form, render_link
from organisations.models import Organisation


def form_snapshot(*, form_id: str) -> dict:
    row = DonationForm.objects.filter(pk=form_id).values(*FORM_FIELDS, "organisation__currency").get()
    return render_form(row, currency=row["organisation__currency"])


def link_snapshot(*, link_id: str) -> dict:
    return render_link(CheckoutLink.objects.filter(pk=link_id).values(*LINK_FIELDS).get())


# --- public pages -------------------------------------------------------------------

def public_form_get(*, slug: str) -> DonationForm | None:
    """The form at /donate/<slug>, whatever its status (the page decides what to show); None when
    there is none or it is ARCHIVED (404 for good)."""
    if not slug or len(slug) > 80:
        return None
    return (DonationForm.objects.select_related("organisation", "organisation__live_organisation")
            .exclude(status=FormStatus.ARCHIVED).filter(slug=slug.lower()).first())


def public_link_get(*, code: str) -> CheckoutLink | None:
    if not code or len(code) > 43:
        return None
    return CheckoutLink.objects.select_related("organisation", "organisation__live_organisation", "donor").filter(code=code).first()


def form_address_rule(*, form: DonationForm) -> str:
    """How the public page asks for the address: NONE, OPTIONAL or REQUIRED.

    Electoral law needs a donor's name and address to disclose them, and whether a
    gift takes the donor's year total past a disclosure threshold (as low as $1,000
    in NSW and the ACT, counted over the year) depends on earlier gifts the public
    page must never reveal. So wherever the gift counts under a regulated
    jurisdiction (the form's revenue code, or the organisation's default), the
    address is REQUIRED whatever the form's `address_visibility` says. Only a form
    whose gifts are UNREGULATED (e.g. non-political fundraising) follows its
    setting (NONE hides the address, OPTIONAL asks without requiring it)."""
    if form.address_visibility == Visibility.REQUIRED:
        return Visibility.REQUIRED
    if jurisdiction_preview(organisation=form.organisation, code=form.revenue_code) != Jurisdiction.UNREGULATED:
        return Visibility.REQUIRED
    return form.address_visibility


def amount_rows(amounts: list[int], per_row: int = 4) -> list[list[int]]:
    """Buttons in balanced rows of at most `per_row`: 5 → 3+2, 6 → 3+3, 7 → 4+3, 8 → 4+4, 9 → 3+3+3."""
    n = len(amounts)
    if n == 0:
        return []
    rows = -(-n // per_row)
    base, extra = divmod(n, rows)
    out, start = [], 0
    for i in range(rows):
        size = base + (1 if i < extra else 0)
        out.append(amounts[start:start + size])
        start += size
    return out


# --- dashboard ----------------------------------------------------------------------

def dollars_label(cents: int) -> str:
    """$250, $1,250.50: whole dollars without cents."""
    whole, part = divmod(int(cents), 100)
    return f"${whole:,}" if part == 0 else f"${whole:,}.{part:02d}"


def link_suggest_description(*, donor: Donor, amount_cents: int | None) -> str:
    """*Suggest*: "$250 donation from Jane Smith"."""
    name = donor.display_name
    if amount_cents:
        return f"{dollars_label(amount_cents)} donation from {name}"
    return f"Donation from {name}"


def links_with_status(queryset: QuerySet, status: str | None) -> QuerySet:
    """Filter links by their effective status (EXPIRED includes ACTIVE links past their expiry)."""
    now = timezone.now()
    if not status:
        return queryset
    if status == LinkStatus.ACTIVE:
        return queryset.filter(status=LinkStatus.ACTIVE, expires_at__gt=now)
    if status == LinkStatus.EXPIRED:
        return queryset.filter(Q(status=LinkStatus.EXPIRED) | Q(status=LinkStatus.ACTIVE, expires_at__lte=now))
    return queryset.filter(status=status)


def link_counts(*, organisation: Organisation) -> dict[str, int]:
    now = timezone.now()
    qs = CheckoutLink.objects.for_organisation(organisation)
    return {
        "ACTIVE": qs.filter(status=LinkStatus.ACTIVE, expires_at__gt=now).count(),
        "COMPLETED": qs.filter(status=LinkStatus.COMPLETED).count(),
    }

"""Receipts fixtures: an organisation with receipt settings, donors and gifts
recorded through donations.services, and Celery run inline so the after-commit
receipt tasks run as a worker would run them."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from donations import services as donations
from receipts.services import receipt_settings_save
from together.actors import Actor

ACTOR = Actor.system("tests")
VALID_ABN = "51 824 753 556"  # the ABR's published example ABN


@pytest.fixture(autouse=True)
def _eager_celery():
    from together.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def set_up_receipts(organisation, **overrides):
    fields = {
        "legal_name": "Riverbank Action Incorporated", "abn": VALID_ABN, "address": "12 Riverbank Road\nAbbotsford VIC 3067",
        "signatory_name": "Jo Treasurer", "signatory_title": "Treasurer", "wording": "Thank you for standing with us.",
        "deductibility": "POLITICAL", "mode": "ON_RECORD",
    }
    fields.update(overrides)
    return receipt_settings_save(organisation=organisation, actor=ACTOR, **fields)


def make_donor(organisation, **fields):
    data = {"first_name": "Alice", "last_name": "Ng", "email": f"alice-{dt.datetime.now().timestamp()}@example.com",
            "address_line1": "3 Elm Street", "suburb": "Fitzroy", "state": "VIC", "postcode": "3065"}
    data.update(fields)
    return donations.donor_create(organisation=organisation, actor=ACTOR, **data)


def record(organisation, donor, captured, amount_cents=25000, **fields):
    """Record a gift and run what its commit enqueues (the receipt task, inline)."""
    data = {"donation_type": "MONETARY", "amount_cents": amount_cents, "donation_date": dt.date(2026, 3, 2),
            "payment_method": "BANK_TRANSFER"}
    data.update(fields)
    with captured(execute=True):
        return donations.donation_record(organisation=organisation, actor=ACTOR, donor_id=donor.id, **data)


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def receipts_org(org):
    set_up_receipts(org)
    return org

"""One row of text → the values an import writes, or the field and reason it cannot."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from donations.models import DonorType, PaymentMethod
from donations.services import DATE_MAX, DATE_MIN, MAX_AMOUNT_CENTS, donor_fields_clean
from compliance.models import REVENUE_CODE_RE
from together.exceptions import ApplicationError
from together.money import MoneyParseError, parse_amount_cents

EXCEL_EPOCH = dt.date(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug folded in)
SERIAL_MIN, SERIAL_MAX = 2, 2958465  # 1900-01-01 .. 9999-12-31
PAYMENT_METHODS = {
    "cash": PaymentMethod.CASH, "cheque": PaymentMethod.CHEQUE, "check": PaymentMethod.CHEQUE, "chq": PaymentMethod.CHEQUE,
    "banktransfer": PaymentMethod.BANK_TRANSFER, "bank": PaymentMethod.BANK_TRANSFER, "eft": PaymentMethod.BANK_TRANSFER,
    "transfer": PaymentMethod.BANK_TRANSFER, "directdeposit": PaymentMethod.BANK_TRANSFER, "directdebit": PaymentMethod.BANK_TRANSFER,
    "deposit": PaymentMethod.BANK_TRANSFER, "bpay": PaymentMethod.BANK_TRANSFER,
    "card": PaymentMethod.CARD, "creditcard": PaymentMethod.CARD, "debitcard": PaymentMethod.CARD, "visa": PaymentMethod.CARD,
    "mastercard": PaymentMethod.CARD, "amex": PaymentMethod.CARD, "eftpos": PaymentMethod.CARD,
    "other": PaymentMethod.OTHER,
}
DONOR_TYPES = {"individual": DonorType.INDIVIDUAL, "person": DonorType.INDIVIDUAL, "organisation": DonorType.ORGANISATION,
               "organization": DonorType.ORGANISATION, "company": DonorType.ORGANISATION, "business": DonorType.ORGANISATION,
               "trust": DonorType.TRUST, "unknown": DonorType.UNKNOWN}
_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][0-9:.]+Z?)?")
_SERIAL = re.compile(r"\d{4,7}(?:\.\d+)?")


class RowInvalid(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclass
class RowData:
    position: int
    donor: dict = field(default_factory=dict)  # donor_create's fields (external_id included)
    amount_cents: int | None = None
    donation_date: dt.date | None = None
    gift_external_id: str | None = None
    reference: str | None = None
    payment_method: str | None = None
    revenue_code: str | None = None
    notes: str | None = None
    custom_fields: dict = field(default_factory=dict)  # the gift's custom fields (the donor's are in `donor`)
    tags: list[str] = field(default_factory=list)  # tag names for the row's donor (each once, ignoring case)

    @property
    def is_gift(self) -> bool:
        return self.amount_cents is not None


def text(value) -> str | None:
    """A cell as text: numbers without a spurious `.0`, formulas as the text they are."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    out = str(value).strip()
    return out or None


def parse_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        day = _serial(value)
    else:
        raw = (str(value) if value is not None else "").strip()
        day = None
        if (m := _ISO.fullmatch(raw)):
            day = _ymd(int(m.group(1)), int(m.group(2)), int(m.group(3)), raw)
        elif (m := _DMY.fullmatch(raw)):  # Australian order: day, month, year
            year = int(m.group(3))
            if len(m.group(3)) == 2:
                year += 2000 if year <= 69 else 1900
            day = _ymd(year, int(m.group(2)), int(m.group(1)), raw)
        elif _SERIAL.fullmatch(raw):
            day = _serial(float(raw))
        else:
            for fmt in ("%d %B %Y", "%d %b %Y", "%d-%b-%Y", "%d-%b-%y", "%B %d, %Y"):
                try:
                    day = dt.datetime.strptime(raw, fmt).date()
                    break
                except ValueError:
                    continue
            if day is None:
                raise RowInvalid("donation_date", f"'{raw[:40]}' is not a date: use DD/MM/YYYY (Australian order) or YYYY-MM-DD.")
    if not DATE_MIN <= day <= DATE_MAX:
        raise RowInvalid("donation_date", f"{day.isoformat()} is outside {DATE_MIN.isoformat()} to {DATE_MAX.isoformat()}.")
    return day


def _ymd(year: int, month: int, day: int, raw: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise RowInvalid("donation_date", f"'{raw[:40]}' is not a real date (day/month/year).") from None


def _serial(value: float) -> dt.date:
    if not SERIAL_MIN <= value <= SERIAL_MAX:
        raise RowInvalid("donation_date", f"{value} is not a date (as an Excel date number it is out of range).")
    return EXCEL_EPOCH + dt.timedelta(days=int(value))


def parse_amount(value) -> int:
    if isinstance(value, bool):
        raise RowInvalid("amount", "The amount is not a number.")
    if isinstance(value, (int, float)):
        try:
            exact = Decimal(repr(value)) * 100
        except InvalidOperation:
            raise RowInvalid("amount", "The amount is not a number.") from None
        if exact != exact.to_integral_value():
            raise RowInvalid("amount", "At most two decimal places (cents).")
        cents = int(exact)
    else:
        raw = (str(value) if value is not None else "").strip()
        if not raw:
            raise RowInvalid("amount", "The amount is empty.")
        if raw.startswith("="):
            raise RowInvalid("amount", f"'{raw[:40]}' is a formula: imports take values, never run formulas. Paste the values.")
        raw = re.sub(r"^(AUD|A\$)\s*", "$", raw, flags=re.IGNORECASE)
        try:
            cents = parse_amount_cents(raw, max_cents=MAX_AMOUNT_CENTS)
        except MoneyParseError as exc:
            raise RowInvalid("amount", f"'{raw[:40]}': {exc.message}") from None
    if cents <= 0:
        raise RowInvalid("amount", "The amount must be more than $0.")
    if cents > MAX_AMOUNT_CENTS:
        raise RowInvalid("amount", "The amount is too large.")
    return cents


def clean_row(position: int, cells: list, columns: dict[str, int], custom: dict[str, list[dict]] | None = None) -> RowData:
    """`columns`: field -> index of its column; `custom`: the organisation's custom field
    definitions by kind (DONOR, DONATION), for `custom:<key>`/`donor_custom:<key>` columns.
    Raises RowInvalid(field, reason)."""
    def cell(name):
        index = columns.get(name)
        return cells[index] if index is not None else None

    row = RowData(position=position)
    donor = {}
    for name in ("first_name", "last_name", "organisation_name", "email", "phone", "address_line1", "address_line2",
                 "suburb", "state", "postcode", "country"):
        value = text(cell(name))
        if value is not None:
            if len(value) > 200:
                raise RowInvalid(name, "Too long: at most 200 characters.")
            donor[name] = value
    if "postcode" in donor and len(donor["postcode"]) > 12:
        raise RowInvalid("postcode", "Too long: at most 12 characters.")
    if "state" in donor and len(donor["state"]) > 50:
        raise RowInvalid("state", "Too long.")
    if (kind := text(cell("donor_type"))) is not None:
        if kind.lower() not in DONOR_TYPES:
            raise RowInvalid("donor_type", f"'{kind[:40]}' is not a donor type: Individual, Organisation, Trust or Unknown.")
        donor["donor_type"] = DONOR_TYPES[kind.lower()]
    if (external := text(cell("donor_external_id"))) is not None:
        donor["external_id"] = external[:200]
    try:
        donor = donor_fields_clean(donor)
    except ApplicationError as exc:
        raise RowInvalid(exc.param or "donor", exc.message) from None
    donor = {k: v for k, v in donor.items() if v is not None}
    if not any(donor.get(k) for k in ("email", "first_name", "last_name", "organisation_name", "phone", "external_id")):
        raise RowInvalid("email", "No donor on this row: it needs an external ID, email, name, organisation name or phone.")
    donor_custom = _custom_values(cell, columns, "donor_custom", (custom or {}).get("DONOR", []))
    if donor_custom:
        donor["custom_fields"] = donor_custom
    row.donor = donor
    row.tags = parse_tags(cell("tags"))
    has_gift = "amount" in columns
    if has_gift:
        row.custom_fields = _custom_values(cell, columns, "custom", (custom or {}).get("DONATION", []), required=True)
    if has_gift:
        row.amount_cents = parse_amount(cell("amount"))
        date_cell = cell("donation_date")
        if date_cell is None or (isinstance(date_cell, str) and not date_cell.strip()):
            raise RowInvalid("donation_date", "The date is empty.")
        row.donation_date = parse_date(date_cell)
        row.gift_external_id = (text(cell("gift_external_id")) or "")[:200] or None
        reference = text(cell("reference"))
        if reference and len(reference) > 100:
            raise RowInvalid("reference", "Too long: at most 100 characters.")
        row.reference = reference
        if (method := text(cell("payment_method"))) is not None:
            key = re.sub(r"[^a-z]", "", method.lower())
            if key not in PAYMENT_METHODS:
                raise RowInvalid("payment_method", f"'{method[:40]}' is not a payment method: cash, cheque, bank transfer, card or other.")
            row.payment_method = PAYMENT_METHODS[key]
        if (code := text(cell("revenue_code"))) is not None:
            if not REVENUE_CODE_RE.fullmatch(code):
                raise RowInvalid("revenue_code", "A revenue code holds letters, digits and . _ - : / + @, at most 100 characters.")
            row.revenue_code = code
        notes = text(cell("notes"))
        row.notes = notes[:5000] if notes else None
    return row


_TAG_SEPARATORS = re.compile(r"[,;]")


def parse_tags(value) -> list[str]:
    """A Tags cell: names separated by commas or semicolons, each a valid tag name
    (donations.crm.tag_name_clean), each once ignoring case, at most as many as one
    call may add."""
    raw = text(value)
    if not raw:
        return []
    from donations.crm import MAX_TAGS_PER_CALL, tag_name_clean

    names: dict[str, str] = {}
    for part in _TAG_SEPARATORS.split(raw):
        if not part.strip():
            continue
        try:
            name = tag_name_clean(part, param="tags")
        except ApplicationError as exc:
            raise RowInvalid("tags", f"'{part.strip()[:40]}': {exc.message}") from None
        names.setdefault(name.lower(), name)
    if len(names) > MAX_TAGS_PER_CALL:
        raise RowInvalid("tags", f"At most {MAX_TAGS_PER_CALL} tags on a row.")
    return list(names.values())


def _custom_values(cell, columns: dict[str, int], prefix: str, definitions: list[dict], *, required: bool = False) -> dict:
    """The row's values of custom fields, typed by donations.custom_fields (the rule the
    services apply again when writing). A date takes the import's own formats (DD/MM/YYYY…)."""
    mapped = [name for name in columns if name.startswith(prefix + ":")]
    if not mapped and not (required and definitions):
        return {}  # the usual row: nothing to read (imports and lookups below cost ~10 µs a row)
    from donations.custom_fields import custom_field_value_clean
    from donations.models import CustomFieldType
    from together.exceptions import ValidationFailed

    by_key = {d["key"]: d for d in definitions}
    out = {}
    for name in mapped:
        key = name.split(":", 1)[1]
        definition = by_key.get(key)
        if definition is None:
            raise RowInvalid(name, f"No {'donor' if prefix == 'donor_custom' else 'gift'} custom field '{key}': map the column again.")
        raw = cell(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        if definition["archived"]:
            raise RowInvalid(name, f"{definition['label']} is archived and takes no new values.")
        if definition["field_type"] == CustomFieldType.DATE:
            try:
                raw = parse_date(raw)
            except RowInvalid as exc:
                raise RowInvalid(name, exc.reason.replace("donation_date", definition["label"])) from None
        elif not (definition["field_type"] == CustomFieldType.NUMBER and isinstance(raw, (int, float))
                  and not isinstance(raw, bool)):
            raw = text(raw)
        try:
            out[key] = custom_field_value_clean(definition, raw)
        except ValidationFailed as exc:
            raise RowInvalid(name, exc.message) from None
    if required:
        for definition in definitions:
            if definition["required"] and not definition["archived"] and definition["key"] not in out:
                raise RowInvalid(f"{prefix}:{definition['key']}", f"{definition['label']} is required.")
    return out


def gift_key(donor_ref: str, row: RowData) -> tuple:
    """What makes a gift the same gift when it has no external ID."""
    return (donor_ref, row.donation_date, row.amount_cents, (row.reference or "").strip().lower())


def name_key(values: dict) -> str:
    name = " ".join(p for p in (values.get("first_name"), values.get("last_name")) if p) or values.get("organisation_name") or ""
    return re.sub(r"\s+", " ", name.strip().lower())


def address_key(values: dict) -> str:
    return re.sub(r"[^a-z0-9]", "", (values.get("address_line1") or "").lower())


def postcode_key(values: dict) -> str:
    return (values.get("postcode") or "").strip().upper()

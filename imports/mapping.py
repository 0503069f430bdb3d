"""Columns to fields: the fields an import fills, the header names that
suggest each, and the organisation's remembered mappings."""
from __future__ import annotations

import hashlib
import re

# field -> (label, group, synonyms). Synonyms are compared lower case with
# everything but letters and digits dropped ("E-mail address" -> "emailaddress").
FIELDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "donor_external_id": ("Donor external ID", "donor", (
        "donorexternalid", "donorid", "donorref", "donorreference", "constituentid", "contactid", "supporterid",
        "memberid", "personid", "crmid", "donornumber", "supporternumber")),
    "first_name": ("First name", "donor", ("firstname", "givenname", "forename", "first", "fname", "givennames",
                                           "christianname")),
    "last_name": ("Last name", "donor", ("lastname", "surname", "familyname", "last", "lname")),
    "organisation_name": ("Organisation name", "donor", ("organisationname", "organizationname", "organisation",
                                                         "organization", "company", "companyname", "business",
                                                         "businessname", "entityname")),
    "email": ("Email", "donor", ("email", "emailaddress", "mail", "emailaddr", "contactemail", "primaryemail")),
    "phone": ("Phone", "donor", ("phone", "phonenumber", "telephone", "mobile", "mobilephone", "mobilenumber", "tel", "cell")),
    "address_line1": ("Address line 1", "donor", ("addressline1", "address1", "address", "streetaddress", "street",
                                                  "addressline", "line1")),
    "address_line2": ("Address line 2", "donor", ("addressline2", "address2", "line2", "unit")),
    "suburb": ("Suburb", "donor", ("suburb", "city", "town", "locality", "suburbtown", "cityortown")),
    "state": ("State", "donor", ("state", "territory", "region", "stateterritory", "province")),
    "postcode": ("Postcode", "donor", ("postcode", "postalcode", "zip", "zipcode", "pcode", "post")),
    "country": ("Country", "donor", ("country", "countrycode")),
    "donor_type": ("Donor type", "donor", ("donortype", "type", "contacttype")),
    # Tag names separated by commas or semicolons, put on the row's donor (donations.crm's tag services).
    "tags": ("Tags", "donor", ("tags", "tag", "donortags", "labels")),
    "amount": ("Amount", "gift", ("amount", "giftamount", "donationamount", "value", "total", "amountaud", "sum",
                                  "gift", "donation", "paymentamount", "amountpaid")),
    "donation_date": ("Date", "gift", ("date", "giftdate", "donationdate", "datereceived", "receiveddate", "paymentdate",
                                       "transactiondate", "dategiven")),
    "gift_external_id": ("Gift external ID", "gift", ("giftexternalid", "externalid", "giftid", "donationid",
                                                      "transactionid", "paymentid", "receiptnumber", "receiptno",
                                                      "id")),
    "reference": ("Reference", "gift", ("reference", "ref", "chequenumber", "chequeno", "bankreference", "description")),
    "payment_method": ("Payment method", "gift", ("paymentmethod", "method", "paymenttype", "paidby", "tender")),
    "revenue_code": ("Revenue code", "gift", ("revenuecode", "fund", "fundcode", "account", "accountcode", "glcode")),
    "notes": ("Notes", "gift", ("notes", "note", "comment", "comments", "memo")),
}
FIELD_CHOICES = [("", "(ignore this column)")] + [(name, label) for name, (label, _g, _s) in FIELDS.items()]
# The organisation's custom fields (issue 19): `custom:<key>` a gift field, `donor_custom:<key>` a
# donor field (values for the donors an import creates). Checked against its definitions when read.
CUSTOM_RE = re.compile(r"^(custom|donor_custom):([a-z][a-z0-9_]{0,39})$")


def custom_field_choices(organisation) -> list[tuple[str, str]]:
    """Mapping choices for the organisation's active custom fields."""
    from donations.custom_fields import custom_fields_active

    return ([(f"donor_custom:{d['key']}", f"Donor: {d['label']}")
             for d in custom_fields_active(organisation=organisation, applies_to="DONOR")]
            + [(f"custom:{d['key']}", f"Gift: {d['label']}")
               for d in custom_fields_active(organisation=organisation, applies_to="DONATION")])
DONOR_FIELDS = [n for n, (_l, g, _s) in FIELDS.items() if g == "donor" and n not in ("donor_external_id", "tags")]


def normalise_header(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (header or "").lower())


def header_key(headers: list[str]) -> str:
    """The same set of columns (in any order, any case or spacing) has the same key."""
    names = sorted(normalise_header(h) for h in headers)
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()


def suggest(headers: list[str]) -> dict[str, str]:
    """header -> field for each header a synonym recognises (each field once, first header wins;
    an exact synonym beats one found inside a longer header)."""
    taken: set[str] = set()
    out = {h: "" for h in headers}
    normalised = {h: normalise_header(h) for h in headers}
    # "External ID" names the gift's id in a file of gifts, the donor's in a file of donors.
    has_amount = any(n in FIELDS["amount"][2] for n in normalised.values())
    for exact in (True, False):
        for header in headers:
            if out[header]:
                continue
            norm = normalised[header]
            if not norm:
                continue
            for name, (_label, _group, synonyms) in FIELDS.items():
                if name in taken:
                    continue
                hit = norm in synonyms if exact else any(len(s) >= 4 and s in norm for s in synonyms)
                if not hit:
                    continue
                if name == "gift_external_id" and norm in ("externalid", "id") and not has_amount:
                    name = "donor_external_id"
                    if name in taken:
                        continue
                out[header] = name
                taken.add(name)
                break
    return out


def check_mapping(headers: list[str], mapping: dict) -> dict[str, str]:
    """A mapping sent by staff: every header known, every field known and used once."""
    from together.exceptions import ValidationFailed

    if not isinstance(mapping, dict):
        raise ValidationFailed("mapping must be an object of column header to field.", param="mapping")
    unknown = [h for h in mapping if h not in headers]
    if unknown:
        raise ValidationFailed(f"mapping names a column the file does not have: '{unknown[0]}'.", param="mapping")
    out = {h: "" for h in headers}
    used: dict[str, str] = {}
    for header, name in mapping.items():
        name = name or ""
        if not isinstance(name, str) or (name and name not in FIELDS and not CUSTOM_RE.match(name)):
            raise ValidationFailed(f"mapping: '{name}' is not a field; one of {', '.join(FIELDS)}.", param="mapping")
        if name and name in used:
            raise ValidationFailed(f"mapping: the columns '{used[name]}' and '{header}' both map to {name}.", param="mapping")
        if name:
            used[name] = header
        out[header] = name
    return out


def check_complete(mapping: dict[str, str]) -> None:
    """Enough columns to find or make a donor, and a date beside an amount."""
    from together.exceptions import ValidationFailed

    fields = set(mapping.values()) - {""}
    if not fields & {"donor_external_id", "email", "first_name", "last_name", "organisation_name", "phone"}:
        raise ValidationFailed("Map at least one donor column: an external ID, email, name, organisation name or phone.",
                               param="mapping")
    if "amount" in fields and "donation_date" not in fields:
        raise ValidationFailed("A file of gifts needs a Date column: map one.", param="mapping")
    if "donation_date" in fields and "amount" not in fields:
        raise ValidationFailed("A file of gifts needs an Amount column: map one.", param="mapping")

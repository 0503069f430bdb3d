"""Examples for every request body and JSON response of the OpenAPI document.

Hand-written where a reader meets them first (the quickstart's requests
verbatim, the donor, donation, campaign and recipient-account objects); for the
rest, built from the schema itself (field names give realistic values), so a
new endpoint is born with examples. tests/api/test_schema_truth.py validates
every example against its schema."""
from __future__ import annotations

import copy
import re

from together.exceptions import ERROR_CODES

ID = "cm3abcde0001abc123xyz456"
TIMESTAMP = "2027-03-15T04:12:09.123Z"

DONOR = {
    "id": ID, "object": "donor", "donor_type": "INDIVIDUAL", "first_name": "Alice", "last_name": "Ng",
    "organisation_name": None, "email": "alice@example.com", "phone": "+61 400 123 456",
    "address_line1": "12 Riverbank Road", "address_line2": None, "suburb": "Abbotsford", "state": "VIC",
    "postcode": "3067", "country": "AU", "notes": None, "external_id": None, "metadata": {},
    "employer_id": "cm3org0007abc123xyz45678", "tags": ["Major donor", "Volunteer"],
    "custom_fields": {"member_since": "2019-07-01", "volunteer": True},
    "donations_total_cents": 420000, "donations_count": 1, "created_at": "2026-04-24T00:13:54.456Z",
    "updated_at": "2026-04-24T00:13:54.456Z",
}

DONATION = {
    "id": "cm3don0001abc123xyz45678", "object": "donation", "donor_id": ID, "campaign_id": None,
    "donation_type": "IN_KIND", "amount_cents": 420000, "currency": "AUD", "donation_date": "2027-03-15",
    "source": "MANUAL", "status": "CONFIRMED", "payment_method": None, "reference": None,
    "in_kind_category": "SERVICES", "in_kind_description": "Pro bono legal advice on candidate eligibility",
    "in_kind_valuation_method": None, "revenue_code": None, "jurisdiction": "FEDERAL", "notes": None,
    "external_id": None, "metadata": {}, "custom_fields": {"region": "North", "pledge_cents_hint": 5000},
    "void_reason": None, "voided_at": None, "refund_date": None,
    "refund_reason": None, "refunded_at": None, "refunded_cents": 0, "stripe_payment_intent_id": None,
    "stripe_charge_id": None, "fee_cents": None, "net_cents": None, "stripe_payout_id": None, "dispute_status": None,
    "consent_given": None, "recurring_plan_id": None, "recurring_period": None, "source_code": "RIVER-27",
    "referrer": "jane.volunteer", "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "riverbank-march",
    "acknowledgement_status": "RECEIPTED", "receipt_number": 1041, "receipt_status": "ISSUED",
    "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}

CAMPAIGN = {
    "id": "cm3cmp0001abc123xyz45678", "object": "campaign", "name": "Save the Riverbank 2027",
    "description": "Our campaign to protect the riverbank parklands.", "goal_cents": 5000000, "currency": "AUD",
    "starts_at": "2027-01-01", "ends_at": "2027-06-30", "status": "ACTIVE", "external_id": None,
    "raised_cents": 420000, "donations_count": 1, "donors_count": 1, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}

RECIPIENT_ACCOUNT = {
    "id": "cm3lnk0001abc123xyz45678", "object": "recipient_org_account_link", "label": "ACF main donations",
    "recipient_organisation_id": "cm3org0002abc123xyz45678", "recipient_org_name": "Australian Conservation Foundation",
    "is_active": True, "can_receive_funds": True, "deactivated_by": None, "introduction_id": None,
    "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}

DONATION_FORM = {
    "id": "cm3frm0001abc123xyz45678", "object": "form", "name": "Riverbank appeal - web", "slug": "save-the-riverbank",
    "url": "https://alltogether.giving/donate/save-the-riverbank", "status": "ACTIVE", "title": "Help protect the riverbank",
    "description": "Every gift funds our campaign to protect the riverbank parklands.", "currency": "AUD",
    "suggested_amounts_cents": [2500, 5000, 10000, 25000], "allow_custom": True, "default_amount_cents": 5000,
    "minimum_cents": None, "effective_minimum_cents": 100, "maximum_cents": None, "allow_recurring": True,
    "recurring_frequencies": ["MONTHLY"], "phone_visibility": "OPTIONAL", "address_visibility": "REQUIRED",
    "revenue_code": "FED-2027", "campaign_id": "cm3cmp0001abc123xyz45678", "custom_field_keys": ["region"], "archived_at": None,
    "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}

CHECKOUT_LINK = {
    "id": "cm3lnk0002abc123xyz45678", "object": "checkout_link", "code": "Xq3v9LwP2mZr7TnB4kYs8A",
    "url": "https://alltogether.giving/c/Xq3v9LwP2mZr7TnB4kYs8A", "donor_id": ID, "amount_cents": 25000, "currency": "AUD",
    "description": "$250 donation from Alice Ng", "payment_methods": ["CARD"],
    "consent_text": "I confirm I am an Australian citizen or resident.", "revenue_code": "FED-2027", "campaign_id": None,
    "status": "ACTIVE", "expires_at": "2027-04-14T04:12:09.123Z", "completed_at": None, "canceled_at": None,
    "donation_id": None, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
}

RECURRING_PLAN = {
    "id": "cm3rcp0001abc123xyz45678", "object": "recurring_plan", "donor_id": ID, "campaign_id": None,
    "form_id": "cm3frm0001abc123xyz45678", "amount_cents": 2500, "currency": "AUD", "frequency": "MONTHLY",
    "status": "ACTIVE", "payment_method": "CARD", "start_date": "2027-01-31", "next_bill_date": "2027-03-31",
    "end_date": None, "max_payments": None, "payments_made": 2, "pause_reason": None, "pause_detail": None,
    "revenue_code": "FED-2027", "stripe_customer_id": "cus_Qx3v9LwP2mZr7T", "stripe_payment_method_id": "pm_1Pq8zR2eZvKYlo2C",
    "failure_count": 0, "last_failure_at": None, "last_failure_message": None, "last_failure_code": None, "retry_at": None,
    "cancel_reason": None, "canceled_at": None, "ended_at": None, "source_code": "RIVER-27", "referrer": None,
    "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "monthly-2027", "created_at": TIMESTAMP,
    "updated_at": TIMESTAMP,
}

RECEIPT = {
    "id": "cm3rct0001abc123xyz45678", "object": "receipt", "number": 1042, "kind": "RECEIPT", "status": "ISSUED",
    "donation_id": "cm3don0001abc123xyz45678", "donor_id": ID, "amount_cents": 25000, "currency": "AUD",
    "donation_date": "2027-03-15", "deductibility": "POLITICAL", "issued_at": TIMESTAMP, "emailed_at": TIMESTAMP,
    "withdrawn_at": None, "withdraw_reason": None, "replaced_by_id": None,
}

IMPORT = {
    "id": "cm3imp0001abc123xyz45678", "object": "import", "file_name": "gifts-2025.csv", "file_size": 18234,
    "file_format": "csv", "encoding": "utf-8-sig", "delimiter": ",",
    "headers": ["First name", "Surname", "Email address", "Gift amount", "Date"],
    "mapping": {"First name": "first_name", "Surname": "last_name", "Email address": "email", "Gift amount": "amount",
                "Date": "donation_date"},
    "mapping_source": "suggested", "notes": [], "kind": "gifts", "status": "READY", "rows_total": 250, "rows_done": 0,
    "progress": 0, "plan_counts": {"CREATE_GIFT": 241, "DUPLICATE": 5, "REFUSED_CAP": 1, "INVALID": 3,
                                   "donor:CREATE_DONOR": 180, "donor:MATCH_DONOR": 67},
    "result_counts": None, "error": None, "created_at": TIMESTAMP, "completed_at": None,
}

COMPONENT_EXAMPLES = {
    "Import": IMPORT,
    "Receipt": RECEIPT,
    "Donor": DONOR,
    "RecurringPlan": RECURRING_PLAN,
    "DonationForm": DONATION_FORM,
    "CheckoutLink": CHECKOUT_LINK,
    "Donation": DONATION,
    "Campaign": CAMPAIGN,
    "RecipientAccount": RECIPIENT_ACCOUNT,
}

# Request bodies, by operationId: {name: (summary, value)}. The quickstart's verbatim first.
REQUEST_EXAMPLES = {
    "donations_create": {
        "in_kind": ("An in-kind gift (the quickstart's request)", {
            "donor_id": "cm3abcde0001abc123xyz456",
            "donation_type": "IN_KIND",
            "amount_cents": 420000,
            "donation_date": "2027-03-15",
            "in_kind_category": "SERVICES",
            "in_kind_description": "Pro bono legal advice on candidate eligibility",
        }),
        "monetary": ("An offline monetary gift", {
            "donor_id": "cm3abcde0001abc123xyz456",
            "donation_type": "MONETARY",
            "amount_cents": 25000,
            "donation_date": "2027-03-15",
            "payment_method": "BANK_TRANSFER",
            "reference": "EFT 20270315-0042",
        }),
    },
    "donations_refund_create": {
        "full": ("Refund all of a gift", {"refund_date": "2027-03-20", "reason": "Donor asked for their money back"}),
        "partial": ("Refund part of a card gift (it stays CONFIRMED, counting what was kept)", {
            "refund_date": "2027-03-20", "reason": "Donor meant to give $150, not $250", "amount_cents": 10000,
        }),
    },
    "recommendation_sets_create": {
        "fixed": ("A FIXED set (the quickstart's request)", {
            "name": "Climate distribution - March 2026",
            "amount_mode": "FIXED",
            "allocations": [
                {"recipient_org_account_link_id": "cm3lnk...", "amount_cents": 25000},
            ],
        }),
        "open": ("An OPEN set: the donor enters every amount", {
            "name": "Climate distribution - open",
            "amount_mode": "OPEN",
            "allocations": [
                {"recipient_org_account_link_id": "cm3lnk...", "amount_cents": 0},
            ],
        }),
    },
    "recipient_accounts_create": {
        "link": ("Exchange a distribution passphrase (the quickstart's { passphrase, label })", {
            "passphrase": "river-gum-lantern-orbit-meadow",
            "label": "ACF main donations",
        }),
    },
    "donors_create": {
        "individual": ("An individual (the donor.created example's fields)", {
            "donor_type": "INDIVIDUAL",
            "email": "alice@example.com",
            "first_name": "Alice",
            "last_name": "Ng",
        }),
    },
    "forms_create": {
        "form": ("A donation form, live at once (Stripe connected)", {
            "name": "Riverbank appeal - web", "slug": "save-the-riverbank", "title": "Help protect the riverbank",
            "description": "Every gift funds our campaign to protect the riverbank parklands.", "status": "ACTIVE",
            "suggested_amounts_cents": [2500, 5000, 10000, 25000], "default_amount_cents": 5000, "revenue_code": "FED-2027",
        }),
    },
    "custom_fields_create": {
        "choice": ("A donor field with a fixed list of values", {
            "applies_to": "DONOR", "key": "region", "label": "Region", "field_type": "CHOICE",
            "choices": ["North", "South", "Central"], "help_text": "Where the donor lives.", "position": 1,
        }),
    },
    "forms_partial_update": {
        "pause": ("Pause a form: its page says it is not accepting gifts", {"status": "PAUSED"}),
    },
    "checkout_links_create": {
        "link": ("A $250 link for one donor, with a consent checkbox", {
            "donor_id": "cm3abcde0001abc123xyz456", "amount_cents": 25000, "description": "$250 donation from Alice Ng",
            "consent_text": "I confirm I am an Australian citizen or resident.", "revenue_code": "FED-2027",
        }),
    },
    "recurring_plans_create": {
        "manual": ("A monthly bank standing order staff confirm", {
            "donor_id": "cm3abcde0001abc123xyz456", "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
            "start_date": "2027-04-01", "revenue_code": "FED-2027",
        }),
        "card": ("A monthly card gift on the donor's saved card, twelve payments", {
            "donor_id": "cm3abcde0001abc123xyz456", "amount_cents": 2500, "frequency": "MONTHLY", "payment_method": "CARD",
            "start_date": "2027-04-01", "max_payments": 12, "stripe_customer_id": "cus_Qx3v9LwP2mZr7T",
            "stripe_payment_method_id": "pm_1Pq8zR2eZvKYlo2C",
        }),
    },
    "recurring_plans_partial_update": {
        "amount": ("Give more from the next charge", {"amount_cents": 5000}),
        "date": ("Move the next charge (the schedule follows it)", {"next_bill_date": "2027-04-15"}),
    },
    "recurring_plans_pause_create": {
        "donor": ("Paused at the donor's request", {"reason": "DONOR", "detail": "Travelling until June"}),
    },
    "recurring_plans_cancel_create": {
        "cancel": ("Cancelled at the donor's request", {"reason": "Donor asked to stop"}),
    },
    "introductions_create": {
        "invite": ("Introduce a prospective recipient", {
            "invitee_email": "contact@partner.example.org",
            "invitee_org_name_hint": "Riverbank Action Fund",
            "invitee_message": "We'd like to direct some of our supporters' gifts to you.",
        }),
    },
}

# Query parameters, by operationId: the quickstart's list call.
PARAMETER_EXAMPLES = {
    "donors_list": {"limit": 5, "email": "alice@example.com", "created_at[gte]": "2026-01-01"},
}

NAME_VALUES = {
    "first_name": "Alice", "last_name": "Ng", "organisation_name": "Riverbank Action Fund", "email": "alice@example.com",
    "invitee_email": "contact@partner.example.org", "phone": "+61 400 123 456", "address_line1": "12 Riverbank Road",
    "suburb": "Abbotsford", "state": "VIC", "postcode": "3067", "country": "AU", "currency": "AUD",
    "label": "ACF main donations", "recipient_org_name": "Australian Conservation Foundation",
    "name": "Climate distribution - March 2026", "request_id": "req_abc123", "url": "https://your-service.example.com/hook",
    "reason": "Entered twice by mistake", "code": "FED-2027", "revenue_code": "FED-2027", "key_prefix": "a1b2c3",
    "key_name": "CRM sync", "organisation_slug": "riverbank", "passphrase": "river-gum-lantern-orbit-meadow",
    "secret": "wh_3JrB0aQq7yXk2LmN9pT4vW8sZ1cD5eF6gH0iJ2kL", "lodged_reference": "AEC-2027-000123",
    "in_kind_description": "Pro bono legal advice on candidate eligibility", "message": "A test event from Together.",
    "description": "Riverbank supporters' CRM", "reference": "EFT 20270315-0042",
}


def _snake(component: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", component).lower()


def _string(name: str, schema: dict):
    fmt = schema.get("format")
    if fmt == "date" or name.endswith("_date") or name in ("starts_at", "ends_at", "period_start", "period_end", "as_of"):
        value = "2027-03-15" if fmt != "date-time" else TIMESTAMP
    elif fmt == "date-time" or name.endswith("_at"):
        value = TIMESTAMP
    elif fmt in ("uri", "url") or name in ("type", "doc_url"):
        value = "https://alltogether.giving/developer/api/errors/not_found"
    elif name in NAME_VALUES and isinstance(NAME_VALUES[name], str):
        value = NAME_VALUES[name]
    elif name == "id" or name.endswith("_id"):
        value = ID
    elif "email" in name:
        value = "alice@example.com"
    else:
        value = name.replace("_", " ").capitalize() or "Example"
    if "maxLength" in schema:
        value = value[: schema["maxLength"]]
    if len(value) < schema.get("minLength", 0):
        value = value.ljust(schema["minLength"], "x")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return _Skip
    return value


class _Skip:
    """A value the synthesiser could not make valid: leave an optional field out."""


def synth(schema: dict, components: dict, name: str = "", *, request: bool = False, depth: int = 0):
    if depth > 8:
        return _Skip
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        if ref in COMPONENT_EXAMPLES:
            return copy.deepcopy(COMPONENT_EXAMPLES[ref])
        target = components.get(ref, {})
        if target.get("type") == "object" and "object" in target.get("properties", {}) and "object" not in NAME_VALUES:
            value = synth(target, components, name, request=request, depth=depth + 1)
            if isinstance(value, dict) and "object" in value and value["object"] == "Object":
                value["object"] = _snake(ref)
            return value
        return synth(target, components, name, request=request, depth=depth + 1)
    if "example" in schema:
        return copy.deepcopy(schema["example"])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        return values[0] if values else None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return synth(schema[key][0], components, name, request=request, depth=depth + 1)
    if "allOf" in schema:
        parts = [synth(part, components, name, request=request, depth=depth + 1) for part in schema["allOf"]]
        if not all(isinstance(value, dict) for value in parts):
            return parts[0]  # e.g. allOf: [{$ref: SomeEnum}] with a description beside it
        out: dict = {}
        for value in parts:
            out.update(value)
        return out
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        kind = non_null[0] if non_null else "null"
    if kind == "object" or "properties" in schema:
        if name == "metadata" or ("properties" not in schema and "additionalProperties" in schema):
            return {"crm_id": "A-1042"}
        out = {}
        required = set(schema.get("required", []))
        for prop, sub in schema.get("properties", {}).items():
            if prop not in required:
                nullable = isinstance(sub.get("type"), list) and "null" in sub["type"]
                nested = "$ref" in sub or sub.get("type") in ("object", "array") or "oneOf" in sub or "allOf" in sub
                if nullable or (nested and not request) or sub.get("readOnly"):
                    continue
            value = synth(sub, components, prop, request=request, depth=depth + 1)
            if value is _Skip:
                if prop in required:
                    return _Skip
                continue
            out[prop] = value
        return out
    if kind == "array":
        item = synth(schema.get("items", {}), components, name.rstrip("s"), request=request, depth=depth + 1)
        return [] if item is _Skip else [item]
    if kind == "string":
        if schema.get("format") == "binary":
            return _Skip
        return _string(name, schema)
    if kind == "integer":
        value = 420000 if name.endswith("_cents") else 1
        if "minimum" in schema:
            value = max(value, schema["minimum"])
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return value
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return name not in ("has_more", "is_sandbox")
    if kind == "null":
        return None
    return _Skip


def _media_examples(media: dict, named: dict | None, components: dict, *, request: bool, summary: str) -> None:
    if "examples" in media or "example" in media:
        return
    if named:
        media["examples"] = {key: {"summary": text, "value": copy.deepcopy(value)} for key, (text, value) in named.items()}
        return
    schema = media.get("schema")
    if not schema:
        return
    if "oneOf" in schema or ("$ref" in schema and "oneOf" in components.get(schema["$ref"].rsplit("/", 1)[-1], {})):
        target = components[schema["$ref"].rsplit("/", 1)[-1]] if "$ref" in schema else schema
        examples = {}
        for variant in target["oneOf"]:
            value = synth(variant, components, request=request)
            if value is not _Skip:
                examples[variant.get("$ref", "variant").rsplit("/", 1)[-1]] = {"summary": summary, "value": value}
        media["examples"] = examples
        return
    value = synth(schema, components, request=request)
    if value is not _Skip:
        media["examples"] = {"example": {"summary": summary, "value": value}}


# One example per error code, shown under each status that can answer it.
ERROR_EXAMPLES = {
    "invalid_request": ("Unknown query parameter: colour.", {"param": "colour"}),
    "validation_failed": ("This gift would take the donor past the FEDERAL cap: $1,000.00 remains.",
                          {"param": "amount_cents", "reason": "donor_cap_exceeded", "remaining_cents": 100000}),
    "unauthorized": ("Send Authorization: Bearer pc_… with a live key.", {}),
    "forbidden": ("This key is READ: use a WRITE key to change anything.", {}),
    "not_found": ("Donor not found.", {}),
    "method_not_allowed": ("PUT is not allowed here.", {}),
    "conflict": ("A donor with this email already exists.", {"existing_id": ID}),
    "idempotency_conflict": ("This Idempotency-Key was used with a different request.", {}),
    "rate_limited": ("Too many requests: retry after 1 second.", {}),
    "internal_error": ("Something failed on our side; nothing was half-stored.", {}),
    "service_unavailable": ("The database is briefly unavailable: retry after 5 seconds.", {}),
}


def error_examples(status: str) -> dict:
    """The envelope examples of every error code answered with `status`."""
    out = {}
    for code, (code_status, _title, _fix) in ERROR_CODES.items():
        if str(code_status) != status or code not in ERROR_EXAMPLES:
            continue
        message, extra = ERROR_EXAMPLES[code]
        url = f"https://alltogether.giving/developer/api/errors/{code}"
        detail = {"type": url, "code": code, "message": message, **extra, "request_id": "req_abc123", "doc_url": url}
        out[code] = {"summary": code, "value": {"error": detail}}
    return out


def add_examples(result: dict) -> None:
    components = result["components"]["schemas"]
    for name, value in COMPONENT_EXAMPLES.items():
        if name in components:
            components[name]["examples"] = [copy.deepcopy(value)]
    for item in result["paths"].values():
        for method, op in item.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            operation_id = op.get("operationId", "")
            for param in op.get("parameters", []):
                value = PARAMETER_EXAMPLES.get(operation_id, {}).get(param["name"])
                if value is not None:
                    param["example"] = value
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                _media_examples(body, REQUEST_EXAMPLES.get(operation_id), components, request=True,
                                summary=op.get("summary", "A request"))
            for code, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media is not None and code.startswith("2"):
                    _media_examples(media, None, components, request=False, summary=response.get("description") or "The response")
                elif media is not None and code == "503" and "ErrorEnvelope" not in str(media.get("schema")):
                    _media_examples(media, None, components, request=False, summary=response.get("description") or "The response")
                elif media is not None and "ErrorEnvelope" in str(media.get("schema")) and error_examples(code):
                    media["examples"] = error_examples(code)
    for item in result.get("webhooks", {}).values():
        for op in item.values():
            media = op["requestBody"]["content"]["application/json"]
            event_type = op["summary"]
            _media_examples(media, None, components, request=False, summary=f"A {event_type} delivery")
            for example in media.get("examples", {}).values():
                example["value"]["type"] = event_type
                example["value"]["organisation_id"] = "cm3org0001abc123xyz45678"

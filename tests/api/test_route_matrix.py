"""The tenancy sweep: every API route, as every kind of caller.

HOW TO ADD YOUR ROUTES (every route under /api/v1/ must have a row, or
`test_every_api_route_has_a_row` fails and names the missing ones):

1. If your paths or bodies name an object, add a seed for it to SEEDS:

       @seed("thing")
       def _(org, ids):           # ids: the seeds made so far; ids["donor"] makes a donor on demand
           return thing_create(organisation=org, actor=ACTOR, donor_id=ids["donor"], ...).id

   Seeds create through services, for the caller's OWN organisation only, and
   return the id. They run lazily: a row pays only for the objects it names
   (and those in its `seeds`). A seed whose name starts with "_" is a helper
   value (a passphrase, another organisation), not an object of the own
   organisation: it is left out of the leak check.

2. Append one Row per (method, path) to ROUTES:

       Row("GET",  "/api/v1/things",               "READ",  200),
       Row("POST", "/api/v1/things",               "WRITE", 201, body={"name": "x"}),
       Row("POST", "/api/v1/things/{thing}/close", "WRITE", 200, body=lambda ids: {"donor_id": ids["donor"]}),

   `{thing}` is filled from SEEDS. `scope` is the weakest key scope that may
   call it (None: no key needed). `status` is what the own organisation gets.
   `seeds=("thing",)` seeds objects a path does not name, e.g. so that a list
   or a report has own data that must not show up for anyone else. `cross` may
   be {"other": ..., "sandbox": ...} when the two strangers differ.

Each row then runs as:
  - no key                     → 401 `unauthorized` (unless scope is None);
  - a READ key on a WRITE row  → 403 `forbidden`, and nothing changes;
  - another organisation and the own organisation's sandbox twin (WRITE keys,
    nothing seeded there) → 404 `not_found` on any path naming a seeded object;
    on a list, 200 with their own (empty) data; on a create, `cross` (default:
    the own status: it creates in the caller's organisation; 400 when the body
    names the seeded objects, which are foreign to them). No successful answer
    to them may contain any id seeded for the own organisation;
  - the own organisation → `status`.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import client_for, make_key
from tests.support.api import assert_error, seed_campaign, seed_donation, make_donor
from tests.support.routes import api_routes, normalise
from together.actors import Actor

ACTOR = Actor.system("route matrix")

# Routes under /api/v1/ that are not tenant resources.
NOT_IN_MATRIX = {"/api/v1/openapi.json"}


# --- seeds ----------------------------------------------------------------------------

SEEDS: dict[str, Callable[[Any, "Seeds"], str]] = {}


def seed(name: str):
    def register(fn):
        assert name not in SEEDS, f"seed {name} defined twice"
        SEEDS[name] = fn
        return fn

    return register


class Seeds(dict):
    """ids of the own organisation's seeded objects, made on first use."""

    def __init__(self, organisation):
        super().__init__()
        self.organisation = organisation

    def __missing__(self, name: str) -> str:
        if name not in SEEDS:
            raise KeyError(f"no seed named {name!r}: add one with @seed({name!r})")
        value = SEEDS[name](self.organisation, self)
        self[name] = value
        return value


def _donor(org, ids):
    from donations.models import Donor

    return Donor.objects.for_organisation(org).get(pk=ids["donor_with_gift"])


@seed("donor")
def _(org, ids):
    return make_donor(org, first_name="Seeded", email="seeded@example.org").id


@seed("duplicate_donor")
def _(org, ids):
    return make_donor(org, first_name="Seeded", email="seeded.duplicate@example.org").id


@seed("donor_with_gift")
def _(org, ids):
    return make_donor(org, first_name="Giver", email="giver@example.org").id


@seed("tag")
def _(org, ids):
    from donations.crm import tag_create

    return tag_create(organisation=org, actor=ACTOR, name="Seeded tag").id


@seed("donor_tag_name")
def _(org, ids):  # a tag the seeded donor carries, by name (the path names it so)
    from donations.crm import donor_tags_add

    donor_tags_add(organisation=org, actor=ACTOR, donor_id=ids["donor"], names=["SeededCarried"])
    return "SeededCarried"


@seed("campaign")
def _(org, ids):
    return seed_campaign(org, name="Seeded campaign").id


@seed("custom_field")
def _(org, ids):
    from donations.custom_fields import custom_field_create

    return custom_field_create(organisation=org, actor=ACTOR, applies_to="DONATION", key="seeded_region",
                               label="Region", field_type="CHOICE", choices=["North", "South"]).id


@seed("donation")
def _(org, ids):
    return seed_donation(org, _donor(org, ids), campaign_id=ids["campaign"], amount_cents=12345,
                         payment_method="BANK_TRANSFER").id


@seed("recipient_account")
def _(org, ids):
    from recommendations.services import distribution_passphrase_generate, recipient_link_exchange
    from tests.conftest import make_org

    recipient = make_org("Matrix Recipient")
    plaintext = distribution_passphrase_generate(organisation=recipient, actor=ACTOR).plaintext
    return recipient_link_exchange(organisation=org, actor=ACTOR, passphrase=plaintext, label="Seeded recipient").id


@seed("introduction")
def _(org, ids):
    from recommendations.services import introduction_create

    return introduction_create(organisation=org, actor=ACTOR, invitee_email="partner@example.org").introduction.id


@seed("recommendation_set")
def _(org, ids):
    from recommendations.services import recommendation_set_create

    return recommendation_set_create(organisation=org, actor=ACTOR, name="Seeded set", allocations=[
        {"recipient_org_account_link_id": ids["recipient_account"], "amount_cents": 25000}]).id


@seed("revenue_code")
def _(org, ids):
    from compliance.services import revenue_code_create

    return revenue_code_create(organisation=org, actor=ACTOR, code="SEEDED-FED", jurisdiction="FEDERAL").id


@seed("election_period")
def _(org, ids):
    import datetime as dt

    from compliance.services import election_period_create

    return election_period_create(organisation=org, actor=ACTOR, election_type="FEDERAL_GENERAL", name="Seeded election",
                                  writ_date=dt.date(2028, 4, 1), polling_date=dt.date(2028, 5, 6)).id


@seed("obligation")
def _(org, ids):
    """Federal disclosure: 6,000 + 12,000 from one donor in 2026 crosses the threshold."""
    import datetime as dt

    from compliance.models import DisclosureObligation

    donor = make_donor(org, first_name="Discloser", email="discloser@example.org")
    seed_donation(org, donor, amount_cents=600_000, donation_date=dt.date(2026, 3, 1))
    seed_donation(org, donor, amount_cents=1_200_000, donation_date=dt.date(2026, 4, 1))
    return DisclosureObligation.objects.for_organisation(org).get(donor_id=donor.id).id


@seed("breach")
def _(org, ids):
    """Merging two donors of 30,000 each in 2027 goes over the 50,000 federal cap after the fact."""
    import datetime as dt

    from compliance.models import ComplianceBreach
    from donations.services import donor_merge

    survivor = make_donor(org, first_name="Over", email="over.cap@example.org")
    duplicate = make_donor(org, first_name="Over", email="over.cap.dup@example.org")
    seed_donation(org, survivor, amount_cents=3_000_000, donation_date=dt.date(2027, 2, 1))
    seed_donation(org, duplicate, amount_cents=3_000_000, donation_date=dt.date(2027, 3, 1))
    donor_merge(organisation=org, actor=ACTOR, survivor_id=survivor.id, duplicate_id=duplicate.id)
    return ComplianceBreach.objects.for_organisation(org).get(donor_id=survivor.id).id


@seed("webhook_endpoint")
def _(org, ids):
    from webhooks.services import webhook_endpoint_create

    return webhook_endpoint_create(organisation=org, actor=ACTOR, url="http://127.0.0.1:9/hook", enabled_events=["*"]).endpoint.id


@seed("webhook_delivery")
def _(org, ids):
    from webhooks.services import webhook_endpoint_test

    return webhook_endpoint_test(organisation=org, actor=ACTOR, endpoint_id=ids["webhook_endpoint"]).id


@seed("import")
def _(org, ids):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from imports.services import import_create, import_plan_run

    body = b"First name,Email,Amount,Date\nAnn,ann.import@example.org,25,01/03/2025\n"
    job = import_create(organisation=org, actor=ACTOR, file=SimpleUploadedFile("gifts.csv", body), file_name="gifts.csv")
    import_plan_run(import_id=job.id)
    return job.id


@seed("event")
def _(org, ids):
    """Every audited change of a public type is an event: a new donor is `donor.created`."""
    from webhooks.models import Event

    donor_id = make_donor(org, first_name="Eventful", email="eventful@example.org").id
    return Event.objects.filter(organisation=org, type="donor.created", data__id=donor_id).get().id


@seed("_stripe_connected")
def _(org, ids):
    """Forms that take gifts and checkout links need the organisation's Stripe account."""
    from organisations.services import organisation_stripe_connect

    organisation_stripe_connect(organisation=org, actor=ACTOR, account_id="acct_matrix" + org.id[-8:])
    org.refresh_from_db()
    return org.stripe_account_id


_SLUGS = itertools.count(1)


@seed("form")
def _(org, ids):
    from engage.services import form_create

    return form_create(organisation=org, actor=ACTOR, name="Seeded form", slug="seeded-" + org.id[-10:], title="Give",
                       suggested_amounts_cents=[2500, 5000]).id


@seed("checkout_link")
def _(org, ids):
    from engage.services import checkout_link_create

    ids["_stripe_connected"]  # noqa: B018 - seeds on first use
    return checkout_link_create(organisation=org, actor=ACTOR, donor_id=ids["donor"], amount_cents=25000).id


def _today_iso() -> str:
    from django.utils import timezone

    return timezone.localdate().isoformat()


def _manual_plan(org, ids):
    from django.utils import timezone

    from payments.recurring import plan_create

    return plan_create(organisation=org, actor=ACTOR, donor_id=ids["donor"], amount_cents=5000, frequency="MONTHLY",
                       payment_method="MANUAL", start_date=timezone.localdate())


@seed("recurring_plan")
def _(org, ids):
    return _manual_plan(org, ids).id


@seed("paused_recurring_plan")
def _(org, ids):
    from payments.recurring import plan_pause

    return plan_pause(organisation=org, actor=ACTOR, plan_id=_manual_plan(org, ids).id, reason="STAFF").id


@seed("receipted_donation")
def _(org, ids):
    from receipts.services import receipt_issue, receipt_settings_save

    receipt_settings_save(organisation=org, actor=ACTOR, legal_name="Seeded Party Inc", abn="51824753556",
                          deductibility="POLITICAL")
    gift = seed_donation(org, _donor(org, ids), amount_cents=4200, payment_method="CASH")
    receipt_issue(organisation=org, actor=ACTOR, donation_id=gift.id)
    return gift.id


# --- the table --------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    method: str
    path: str
    scope: str | None
    status: int
    body: dict | Callable[[Seeds], dict] | None = None
    # Status for another organisation / the sandbox twin on a path without objects:
    # an int for both, or {"other": ..., "sandbox": ...}.
    cross: int | dict | None = None
    cross_list_empty: bool = True  # a list the other organisation sees is empty
    seeds: tuple[str, ...] = ()  # objects to seed besides those the path and body name

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def names_objects(self) -> bool:
        return "{" in self.path


DONATION_BODY = lambda ids: {  # noqa: E731
    "donor_id": ids["donor_with_gift"], "donation_type": "MONETARY", "amount_cents": 5000, "donation_date": "2026-03-01",
}

ROUTES: list[Row] = [
    # meta
    Row("GET", "/api/v1/whoami", "READ", 200),
    Row("GET", "/api/v1/health", None, 200),
    # donors
    Row("GET", "/api/v1/donors", "READ", 200, seeds=("donor",)),
    Row("POST", "/api/v1/donors", "WRITE", 201, body={"email": "new.donor@example.org"}),
    Row("GET", "/api/v1/donors/{donor}", "READ", 200),
    Row("PATCH", "/api/v1/donors/{donor}", "WRITE", 200, body={"first_name": "Renamed"}),
    Row("DELETE", "/api/v1/donors/{donor}", "WRITE", 204),
    Row("GET", "/api/v1/donors/{donor_with_gift}/donations", "READ", 200),
    Row("POST", "/api/v1/donors/{donor}/merge", "WRITE", 200, body=lambda ids: {"duplicate_id": ids["duplicate_donor"]}),
    Row("POST", "/api/v1/donors/{donor}/tags", "WRITE", 200, body={"tags": ["Volunteer"]}),
    Row("DELETE", "/api/v1/donors/{donor}/tags/{donor_tag_name}", "WRITE", 200),

    Row("GET", "/api/v1/tags", "READ", 200, seeds=("tag",)),
    Row("POST", "/api/v1/tags", "WRITE", 201, body={"name": "Brand new tag"}),
    Row("GET", "/api/v1/tags/{tag}", "READ", 200),
    Row("PATCH", "/api/v1/tags/{tag}", "WRITE", 200, body={"name": "Renamed tag"}),
    Row("DELETE", "/api/v1/tags/{tag}", "WRITE", 204),
    # donations
    Row("GET", "/api/v1/donations", "READ", 200, seeds=("donation",)),
    Row("POST", "/api/v1/donations", "WRITE", 201, body=DONATION_BODY, cross=400),
    Row("GET", "/api/v1/donations/{donation}", "READ", 200),
    Row("PATCH", "/api/v1/donations/{donation}", "WRITE", 200, body={"notes": "changed"}),
    Row("POST", "/api/v1/donations/{donation}/void", "WRITE", 200, body={"reason": "entered twice"}),
    Row("POST", "/api/v1/donations/{donation}/refund", "WRITE", 200, body={"refund_date": "2026-03-05", "reason": "returned"}),
    # campaigns
    Row("GET", "/api/v1/campaigns", "READ", 200, seeds=("campaign",)),
    Row("POST", "/api/v1/campaigns", "WRITE", 201, body={"name": "Autumn appeal"}),
    Row("GET", "/api/v1/campaigns/{campaign}", "READ", 200),
    Row("PATCH", "/api/v1/campaigns/{campaign}", "WRITE", 200, body={"name": "Renamed appeal"}),
    Row("POST", "/api/v1/campaigns/{campaign}/archive", "WRITE", 200),
    Row("GET", "/api/v1/campaigns/{campaign}/donations", "READ", 200),
    Row("GET", "/api/v1/campaigns/{campaign}/sources", "READ", 200, seeds=("donation",)),
    # custom fields (issue 19)
    Row("GET", "/api/v1/custom-fields", "READ", 200, seeds=("custom_field",)),
    Row("POST", "/api/v1/custom-fields", "WRITE", 201,
        body={"applies_to": "DONOR", "key": "member_since", "label": "Member since", "field_type": "DATE"}),
    Row("GET", "/api/v1/custom-fields/{custom_field}", "READ", 200),
    Row("PATCH", "/api/v1/custom-fields/{custom_field}", "WRITE", 200, body={"label": "Area"}),
    Row("POST", "/api/v1/custom-fields/{custom_field}/archive", "WRITE", 200),
    # donation forms
    Row("GET", "/api/v1/forms", "READ", 200, seeds=("form",)),
    Row("POST", "/api/v1/forms", "WRITE", 201, body=lambda ids: {  # slugs are global: a fresh one per call
        "name": "Winter appeal", "slug": f"winter-appeal-{next(_SLUGS)}", "title": "Give", "suggested_amounts_cents": [2500, 5000]}),
    Row("GET", "/api/v1/forms/{form}", "READ", 200),
    Row("PATCH", "/api/v1/forms/{form}", "WRITE", 200, body={"title": "Renamed"}),
    Row("POST", "/api/v1/forms/{form}/archive", "WRITE", 200),
    # checkout links (a stranger names a donor foreign to it: 400)
    Row("GET", "/api/v1/checkout-links", "READ", 200, seeds=("checkout_link",)),
    Row("POST", "/api/v1/checkout-links", "WRITE", 201, body=lambda ids: {"donor_id": ids["donor"], "amount_cents": 25000},
        cross=400, seeds=("_stripe_connected",)),
    Row("GET", "/api/v1/checkout-links/{checkout_link}", "READ", 200),
    Row("POST", "/api/v1/checkout-links/{checkout_link}/cancel", "WRITE", 200),
    # recurring plans
    Row("GET", "/api/v1/recurring-plans", "READ", 200, seeds=("recurring_plan",)),
    Row("POST", "/api/v1/recurring-plans", "WRITE", 201, cross=400, body=lambda ids: {
        "donor_id": ids["donor"], "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
        "start_date": _today_iso()}),
    Row("GET", "/api/v1/recurring-plans/{recurring_plan}", "READ", 200),
    Row("PATCH", "/api/v1/recurring-plans/{recurring_plan}", "WRITE", 200, body={"amount_cents": 7500}),
    Row("POST", "/api/v1/recurring-plans/{recurring_plan}/pause", "WRITE", 200, body={"reason": "DONOR"}),
    Row("POST", "/api/v1/recurring-plans/{paused_recurring_plan}/resume", "WRITE", 200),
    Row("POST", "/api/v1/recurring-plans/{recurring_plan}/cancel", "WRITE", 200, body={"reason": "Donor asked"}),
    # compliance
    Row("GET", "/api/v1/compliance-settings", "READ", 200),
    Row("PATCH", "/api/v1/compliance-settings", "WRITE", 200, body={"alert_amber_percent": 70}),
    Row("GET", "/api/v1/donors/{donor_with_gift}/compliance", "READ", 200, seeds=("donation",)),
    Row("GET", "/api/v1/revenue-codes", "READ", 200, seeds=("revenue_code",)),
    Row("POST", "/api/v1/revenue-codes", "WRITE", 201, body={"code": "NEW-CODE", "jurisdiction": "NSW"}),
    Row("GET", "/api/v1/revenue-codes/{revenue_code}", "READ", 200),
    Row("PATCH", "/api/v1/revenue-codes/{revenue_code}", "WRITE", 200, body={"description": "Renamed"}),
    Row("POST", "/api/v1/revenue-codes/{revenue_code}/archive", "WRITE", 200),
    Row("GET", "/api/v1/election-periods", "READ", 200, seeds=("election_period",)),
    Row("POST", "/api/v1/election-periods", "WRITE", 201, body={
        "election_type": "FEDERAL_GENERAL", "name": "Next election", "writ_date": "2028-04-01", "polling_date": "2028-05-06"}),
    Row("GET", "/api/v1/election-periods/{election_period}", "READ", 200),
    Row("GET", "/api/v1/disclosure-obligations", "READ", 200, seeds=("obligation",)),
    Row("GET", "/api/v1/disclosure-obligations/{obligation}", "READ", 200),
    Row("POST", "/api/v1/disclosure-obligations/{obligation}/lodge", "WRITE", 200,
        body={"reference": "AEC-12345", "lodged_date": "2026-05-01"}),
    Row("GET", "/api/v1/compliance-breaches", "READ", 200, seeds=("breach",)),
    Row("GET", "/api/v1/compliance-breaches/{breach}", "READ", 200),
    # webhooks
    Row("GET", "/api/v1/events", "READ", 200, seeds=("event",)),
    Row("GET", "/api/v1/events/{event}", "READ", 200),
    Row("GET", "/api/v1/webhook-endpoints", "READ", 200, seeds=("webhook_endpoint",)),
    Row("POST", "/api/v1/webhook-endpoints", "WRITE", 201, body={"url": "http://127.0.0.1:9/new", "enabled_events": ["*"]}),
    Row("GET", "/api/v1/webhook-endpoints/{webhook_endpoint}", "READ", 200),
    Row("PATCH", "/api/v1/webhook-endpoints/{webhook_endpoint}", "WRITE", 200, body={"description": "Renamed"}),
    Row("DELETE", "/api/v1/webhook-endpoints/{webhook_endpoint}", "WRITE", 204),
    Row("POST", "/api/v1/webhook-endpoints/{webhook_endpoint}/rotate-secret", "WRITE", 200),
    Row("POST", "/api/v1/webhook-endpoints/{webhook_endpoint}/test", "WRITE", 202),
    Row("GET", "/api/v1/webhook-endpoints/{webhook_endpoint}/deliveries", "READ", 200, seeds=("webhook_delivery",)),
    Row("GET", "/api/v1/webhook-deliveries/{webhook_delivery}", "READ", 200),
    Row("POST", "/api/v1/webhook-deliveries/{webhook_delivery}/retry", "WRITE", 202),
    # reports (CSV): another organisation's report holds none of this organisation's rows
    Row("GET", "/api/v1/reports/donations?from=2026-01-01&to=2026-06-30", "READ", 200, seeds=("donation",)),
    Row("GET", "/api/v1/reports/in-kind-register", "READ", 200, seeds=("donation",)),
    Row("GET", "/api/v1/reports/disclosure-return", "READ", 200, seeds=("obligation",)),
    Row("GET", "/api/v1/reports/campaign-summary", "READ", 200, seeds=("campaign",)),
    Row("GET", "/api/v1/reports/reconciliation", "READ", 200, seeds=("donation",)),
    Row("GET", "/api/v1/reports/receipts-register", "READ", 200, seeds=("receipted_donation",)),
    Row("GET", "/api/v1/reports/donors", "READ", 200, seeds=("donor",)),
    # receipts: the standing receipt's PDF and a resend (tests/receipts/test_api.py has the rest)
    Row("GET", "/api/v1/donations/{receipted_donation}/receipt", "READ", 200),
    Row("POST", "/api/v1/donations/{receipted_donation}/receipt/resend", "WRITE", 200),
    # recipient accounts (a wrong passphrase: every caller gets the same 400; the success path is in tests/recommendations)
    Row("GET", "/api/v1/recipient-accounts", "READ", 200),
    Row("POST", "/api/v1/recipient-accounts", "WRITE", 400, body={"passphrase": "zoo zoo zoo zoo zoo zoo", "label": "x"}, cross=400),
    Row("GET", "/api/v1/recipient-accounts/{recipient_account}", "READ", 200),
    Row("PATCH", "/api/v1/recipient-accounts/{recipient_account}", "WRITE", 200, body={"label": "Renamed"}),
    # introductions
    Row("GET", "/api/v1/introductions", "READ", 200),
    Row("POST", "/api/v1/introductions", "WRITE", 201, body={"invitee_email": "partner@example.org", "invitee_org_name_hint": "Partner"}),
    Row("GET", "/api/v1/introductions/{introduction}", "READ", 200),
    Row("POST", "/api/v1/introductions/{introduction}/revoke", "WRITE", 200),
    # imports (the multipart upload's success path is in tests/imports: a JSON body is refused alike for every caller)
    Row("GET", "/api/v1/imports", "WRITE", 200, seeds=("import",)),
    Row("POST", "/api/v1/imports", "WRITE", 400, body={"file": "gifts.csv"}),
    Row("GET", "/api/v1/imports/{import}", "WRITE", 200),
    Row("POST", "/api/v1/imports/{import}/commit", "WRITE", 202),
    Row("GET", "/api/v1/imports/{import}/result", "WRITE", 200),
    # recommendation sets
    Row("GET", "/api/v1/recommendation-sets", "READ", 200),
    Row("POST", "/api/v1/recommendation-sets", "WRITE", 201, cross=400, body=lambda ids: {
        "name": "Climate distribution - March 2026", "amount_mode": "FIXED",
        "allocations": [{"recipient_org_account_link_id": ids["recipient_account"], "amount_cents": 25000}]}),
    Row("GET", "/api/v1/recommendation-sets/{recommendation_set}", "READ", 200),
    Row("PATCH", "/api/v1/recommendation-sets/{recommendation_set}", "WRITE", 200, body={"name": "Renamed set"}),
    Row("DELETE", "/api/v1/recommendation-sets/{recommendation_set}", "WRITE", 204),
]


# --- the sweep -------------------------------------------------------------------------------

def _call(client, row: Row, ids: Seeds):
    path = row.path.format_map(ids)
    body = row.body(ids) if callable(row.body) else row.body
    if row.method in ("POST", "PATCH"):
        return client.generic(row.method, path, _json(body), content_type="application/json")
    return client.generic(row.method, path)


def _json(body) -> bytes:
    import json

    return json.dumps(body).encode() if body is not None else b""


def _snapshot(organisation) -> dict:
    """Row counts and last update of the tenant tables: to prove a refusal changed nothing.
    One query for all of them (it runs twice in each of some 600 tests)."""
    from django.apps import apps
    from django.db import connection

    from together.models import OrganisationOwned

    parts, params = [], []
    for model in apps.get_models():
        if issubclass(model, OrganisationOwned) and model._meta.label not in ("organisations.AuditEntry", "organisations.ApiKey"):
            meta = model._meta
            parts.append(
                f"SELECT %s, count(*), max({connection.ops.quote_name(meta.get_field('updated_at').column)}) "
                f"FROM {connection.ops.quote_name(meta.db_table)} "
                f"WHERE {connection.ops.quote_name(meta.get_field('organisation').column)} = %s"
            )
            params += [meta.label, organisation.pk]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return {label: (count, last) for label, count, last in cursor.fetchall()}


@pytest.mark.django_db
@pytest.mark.parametrize("row", ROUTES, ids=lambda r: r.id)
def test_route(row: Row, org, other_org):
    ids = Seeds(org)
    # Seed everything the row names before any call, so every caller sees the same world.
    row.path.format_map(ids)
    if callable(row.body):
        row.body(ids)
    for name in row.seeds:
        ids[name]  # noqa: B018 - seeds on first use
    seeded = {value for name, value in ids.items() if not name.startswith("_")}
    before = _snapshot(org)

    # No key.
    if row.scope is not None:
        assert_error(_call(client_for(None), row, ids), 401, "unauthorized")

    # A READ key on a write.
    if row.scope == "WRITE":
        assert_error(_call(client_for(make_key(org, "READ")), row, ids), 403, "forbidden")
        assert _snapshot(org) == before, "a refused write changed data"

    # Another organisation, and the own organisation's sandbox twin.
    if row.scope is not None:
        for stranger in (other_org, org.sandbox):
            response = _call(client_for(make_key(stranger, "WRITE")), row, ids)
            label = "sandbox twin" if stranger.is_sandbox else "other organisation"
            if row.names_objects():
                assert_error(response, 404, "not_found")
            else:
                expected = row.cross if row.cross is not None else row.status
                if isinstance(expected, dict):
                    expected = expected["sandbox" if stranger.is_sandbox else "other"]
                assert response.status_code == expected, (label, response.status_code, response.content[:300])
                if expected >= 400:
                    assert_error(response, expected, response.json()["error"]["code"])
                elif row.method == "GET" and _is_json(response) and "data" in response.json() and row.cross_list_empty:
                    assert response.json()["data"] == [], (label, response.content[:300])
            if response.status_code < 400:
                content = _content(response)
                leaked = [i for i in seeded if i.encode() in content]
                assert not leaked, f"{label} saw {leaked}"
        assert _snapshot(org) == before, "another organisation changed this organisation's data"

    # The own organisation.
    key_scope = row.scope or "READ"
    response = _call(client_for(make_key(org, key_scope)), row, ids)
    assert response.status_code == row.status, _content(response)[:500]
    if row.status < 400 and row.status != 204 and _is_json(response):
        response.json()


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0] == "application/json"


def _content(response) -> bytes:
    if getattr(response, "streaming", False):
        response._matrix_content = getattr(response, "_matrix_content", None) or b"".join(response.streaming_content)
        return response._matrix_content
    return response.content


def test_every_api_route_has_a_row():
    served = {r for r in api_routes() if r[1] not in NOT_IN_MATRIX}
    table = {(row.method, normalise(row.path.split("?")[0])) for row in ROUTES}
    missing = sorted(served - table)
    assert not missing, "API routes without a row in ROUTES (see the top of this file): " + ", ".join(f"{m} {p}" for m, p in missing)
    stale = sorted(table - served)
    assert not stale, "rows for routes that are not served: " + ", ".join(f"{m} {p}" for m, p in stale)


def test_rows_are_unique():
    keys = [(row.method, normalise(row.path.split("?")[0])) for row in ROUTES]
    assert len(keys) == len(set(keys))


def test_walker_sees_viewset_and_apiview_routes():
    """Guard the guard: the walker finds routes of each kind, with their methods."""
    served = api_routes()
    assert ("GET", "/api/v1/whoami") in served          # APIView
    assert ("POST", "/api/v1/donors") in served          # router list route
    assert ("DELETE", "/api/v1/donors/{}") in served     # router detail route
    assert ("POST", "/api/v1/donations/{}/void") in served  # @action
    assert ("PUT", "/api/v1/donors/{}") not in served    # not served

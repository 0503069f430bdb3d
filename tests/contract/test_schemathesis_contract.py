"""Schemathesis over every operation of the served document with every check,
positive_data_acceptance included: a request the document calls valid must
not be refused (400), and every answer must match the document. The coverage
phase (positive only) sends the boundary values of every parameter: the
bounds of `limit`, the shortest string a filter allows, each enum value.

What no JSON Schema can promise is supplied the way an integrator would:
valid cases name the seeded organisation's real records (an id that exists, a
recipient's current passphrase, a fresh duplicate to merge), and never send
both cursors. A valid request may still break a business rule that depends on
stored state or on several fields at once (errors.md: 400 validation_failed
with `param`); those rules are listed one by one in BUSINESS_RULES, and only
for them is positive_data_acceptance waived (every other check still runs).
Any other refusal of a schema-valid request fails: the document must say it.

Bounded: CONTRACT_MAX_EXAMPLES (default 4) per operation and mode, no
shrinking, deterministic generation, a per-example deadline."""
from __future__ import annotations

import os
import zlib

import hypothesis
import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck

from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import make_key, make_org
from tests.recommendations.conftest import link, passphrase_for
from tests.support.api import lazy_runner_compatible, make_donor, seed_campaign, seed_donation
from together.wsgi import application

pytestmark = pytest.mark.contract

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "4"))

# The served document, read once at collection (the operations are the test ids).
_raw = Client().get("/api/v1/openapi.json").json()


def load(*, phases: list[str], modes: list[str]):
    loaded = schemathesis.openapi.from_dict(_raw)
    loaded.app = application
    loaded.location = "/api/v1/openapi.json"
    loaded.config.generation.update(
        modes=modes, max_examples=MAX_EXAMPLES, no_shrink=True, deterministic=True, database="none",
    )
    loaded.config.checks.update(included_check_names=["all"])
    loaded.config.phases.update(phases=phases)
    return loaded


fuzz_schema = load(phases=["examples", "fuzzing"], modes=["positive", "negative"])

# The boundary pass, in BOUNDARY_PARTS tests of a share of the operations each (for
# xdist to spread), each built when it runs (schemathesis.pytest.from_fixture).
# Schemathesis computes a coverage test's cases when it builds the test:
# parametrized at import, that was about 15 s of CPU in every xdist worker's
# collection, the workers that never ran it included.
BOUNDARY_PARTS = 4


@pytest.fixture
def boundary_schema(request, db):
    lazy_runner_compatible(request)
    return load(phases=["coverage"], modes=["positive"])


def boundary_part(part: int):
    """The lazy schema of the operations in `part` (a stable share, by label)."""
    return schemathesis.pytest.from_fixture("boundary_schema").include(
        lambda ctx: zlib.crc32(ctx.operation.label.encode()) % BOUNDARY_PARTS == part
    )

RESOURCE_OF_PATH = {
    "donors": "donor", "donations": "donation", "campaigns": "campaign", "recipient-accounts": "link",
}
RESOURCE_OF_FIELD = {"donor_id": "donor", "campaign_id": "campaign", "recipient_org_account_link_id": "link"}

# Business rules a schema-valid request can break, per operation: the `param`
# of the 400 validation_failed each one answers. Each depends on stored state
# or on several fields together, which JSON Schema cannot say.
ANY = "*"
BUSINESS_RULES: dict[tuple[str, str], set[str]] = {
    # refund and void only a CONFIRMED donation (a previous example may have refunded or voided it)
    ("POST", "/api/v1/donations/{id}/refund"): {"status"},
    ("POST", "/api/v1/donations/{id}/void"): {"status"},
    # in-kind fields only on an IN_KIND donation, payment fields only on a MONETARY one: the stored type decides
    ("PATCH", "/api/v1/donations/{id}"): {
        "in_kind_category", "in_kind_description", "in_kind_valuation_method", "payment_method", "reference",
    },
    # alert levels rise: amber < red < critical, against the stored ones for a partial update
    ("PATCH", "/api/v1/compliance-settings"): {"alert_amber_percent", "alert_red_percent", "alert_critical_percent"},
    # a disclosure return exists only where a threshold applies in that jurisdiction on that date (the law's rules)
    ("GET", "/api/v1/reports/disclosure-return"): {"jurisdiction", "period"},
    # a cursor names a record of this list
    (ANY, ANY): {"starting_after", "ending_before"},
}


def is_business_rule(case, response) -> bool:
    if response.status_code != 400:
        return False
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if error.get("code") != "validation_failed":
        return False
    params = BUSINESS_RULES.get((case.method.upper(), case.path), set()) | BUSINESS_RULES[(ANY, ANY)]
    return error.get("param") in params or bool(error.get("reason"))


@pytest.fixture
def wsgi_in_test_transaction():
    """The WSGI handler's request signals would close the test transaction's
    connection; Django's test client disconnects them the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(db, settings, wsgi_in_test_transaction):
    settings.RATE_LIMIT_BURST = 1_000_000  # the bucket has its own tests
    settings.RATE_LIMIT_RATE = 1_000_000
    org = make_org("Contract")
    recipient = make_org("Contract Recipient")
    donor = make_donor(org, first_name="Contract", email="contract@example.org")
    campaign = seed_campaign(org, name="Contract campaign")
    donation = seed_donation(org, donor, campaign_id=campaign.id, amount_cents=2500)
    return {
        "org": org,
        "recipient": recipient,
        "key": make_key(org, "WRITE"),
        "ids": {
            "donor": donor.id, "campaign": campaign.id, "donation": donation.id,
            "link": link(org, recipient).id,
        },
    }


def integers_as_integers(value):
    """JSON Schema counts 726295546.0 as an integer; the server (money in
    cents) wants integers written as integers, as every JSON encoder writes an
    int: send generated integral floats that way."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integers_as_integers(v) for v in value]
    return value


def aim_at_seeded_objects(case, seeded: dict) -> None:
    """Valid cases name the organisation's real records; invalid cases keep
    what was generated (they must stay invalid)."""
    meta = case.meta
    if meta is None or meta.generation.mode != schemathesis.GenerationMode.POSITIVE:
        return
    ids = seeded["ids"]
    parts = case.path.split("/")
    resource = RESOURCE_OF_PATH.get(parts[3]) if len(parts) > 4 else None
    if resource and case.path_parameters:
        for name in case.path_parameters:
            case.path_parameters[name] = ids[resource]
    if case.query and "starting_after" in case.query and "ending_before" in case.query:
        del case.query["ending_before"]  # one cursor at a time (the description says so)
    case.body = integers_as_integers(case.body)
    if isinstance(case.body, dict):
        for name, resource in RESOURCE_OF_FIELD.items():
            if isinstance(case.body.get(name), str):
                case.body[name] = ids[resource]
        for allocation in case.body.get("allocations") or []:
            if isinstance(allocation, dict) and isinstance(allocation.get("recipient_org_account_link_id"), str):
                allocation["recipient_org_account_link_id"] = ids["link"]
        if isinstance(case.body.get("duplicate_id"), str):  # a merge removes it: a fresh one each time
            case.body["duplicate_id"] = make_donor(seeded["org"], first_name="Duplicate").id
        if isinstance(case.body.get("passphrase"), str):  # the recipient's current passphrase
            case.body["passphrase"] = passphrase_for(seeded["recipient"])


def call_and_validate(case, seeded) -> None:
    aim_at_seeded_objects(case, seeded)
    headers = {"Authorization": f"Bearer {seeded['key']}"}
    response = case.call(headers=headers)
    excluded = [positive_data_acceptance] if is_business_rule(case, response) else []
    case.validate_response(response, headers=headers, excluded_checks=excluded)


HYPOTHESIS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=15_000,  # ms per example: the machine is shared
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


@fuzz_schema.parametrize()
@HYPOTHESIS
def test_every_operation_keeps_its_contract(case, seeded):
    call_and_validate(case, seeded)


def boundary_test(part: int):
    @boundary_part(part).parametrize()
    @HYPOTHESIS
    def test_every_boundary_value_the_document_allows_is_accepted(case, seeded):
        call_and_validate(case, seeded)

    return test_every_boundary_value_the_document_allows_is_accepted


for _part in range(BOUNDARY_PARTS):  # every share of the operations, whatever BOUNDARY_PARTS is
    globals()[f"test_every_boundary_value_the_document_allows_is_accepted_part{_part + 1}"] = boundary_test(_part)

"""Python integrators: openapi-python-client generates a client from the served
document (any generator warning fails), and the quickstart runs through it
against a live server with real keys: whoami, create a donor, create a
donation twice with one per-call Idempotency-Key (the replay has the same id
and `Idempotent-Replayed: true`), page with limit + starting_after, filter with
`amount_cents[gte]`, expand the donor, and read typed errors (404 not_found,
409 conflict with `existing_id`)."""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pkgutil
import sys
import typing
import uuid
from types import ModuleType, UnionType

import pytest

from tests.conftest import make_key, make_org
from tests.contract.conftest import output_of, run

pytestmark = pytest.mark.contract

PACKAGE = "together_contract_client"


@pytest.fixture(scope="module")
def client_package(document_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("python_client")
    config = out / "openapi-python-client.yaml"
    config.write_text("post_hooks: []\n")  # no ruff formatting pass: not part of the contract, and slow
    result = run(
        [
            sys.executable, "-m", "openapi_python_client", "generate", "--path", str(document_path),
            "--output-path", str(out / PACKAGE), "--meta", "none", "--config", str(config), "--fail-on-warning",
        ],
        cwd=out, timeout=300,
    )
    assert result.returncode == 0, f"openapi-python-client could not generate a full client\n{output_of(result)}"
    sys.path.insert(0, str(out))
    try:
        package = importlib.import_module(PACKAGE)
        yield package
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def operations(package: ModuleType) -> dict[str, ModuleType]:
    """operationId → its generated module (one module per operation, under api/<tag>/)."""
    found = {}
    api = importlib.import_module(f"{package.__name__}.api")
    for info in pkgutil.walk_packages(api.__path__, prefix=f"{api.__name__}."):
        if not info.ispkg:
            module = importlib.import_module(info.name)
            found[info.name.rsplit(".", 1)[1]] = module
    return found


def union_members(annotation) -> list:
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        return [m for m in typing.get_args(annotation) if m is not type(None)]
    return [annotation]


def body_model(module: ModuleType, variant: str | None = None):
    """The model class of the operation's JSON body; with `variant`, the union
    member whose name contains it (a body that is a oneOf)."""
    hints = typing.get_type_hints(module.sync_detailed)
    members = [m for m in union_members(hints["body"]) if hasattr(m, "from_dict")]
    if variant:
        members = [m for m in members if variant.lower().replace("_", "") in m.__name__.lower()] or members
    assert members, f"no model for the body of {module.__name__}"
    return members[0]


def kwarg(module: ModuleType, wire_name: str) -> str:
    """The generated keyword for a query parameter (`amount_cents[gte]` → e.g. `amount_centsgte`)."""
    def norm(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())

    names = [n for n in inspect.signature(module.sync_detailed).parameters if norm(n) == norm(wire_name)]
    assert names, f"{module.__name__} has no keyword for {wire_name!r}: {list(inspect.signature(module.sync_detailed).parameters)}"
    return names[0]


def list_item_enum(module: ModuleType, keyword: str):
    """The enum class of the items of a list-valued query parameter (`expand[]`)."""
    hints = typing.get_type_hints(module.sync_detailed)
    for member in union_members(hints[keyword]):
        if typing.get_origin(member) is list:
            return typing.get_args(member)[0]
    raise AssertionError(f"{keyword} of {module.__name__} is not a list: {hints[keyword]}")


def value(v):
    return getattr(v, "value", v)


@pytest.mark.django_db(transaction=True)
def test_quickstart_through_the_generated_python_client(client_package, live_server):
    from together_contract_client import AuthenticatedClient

    org = make_org("Contract")
    # The live server thread ends a keep-alive connection (and its database session) when the client closes it.
    with AuthenticatedClient(base_url=live_server.url, token=make_key(org, "READ"), timeout=30.0) as read, \
            AuthenticatedClient(base_url=live_server.url, token=make_key(org, "WRITE"), timeout=30.0) as write:
        quickstart(client_package, org, read, write)


def quickstart(client_package, org, read, write):
    from together_contract_client.types import UNSET

    ops = operations(client_package)

    # 1. whoami
    who = ops["whoami"].sync_detailed(client=read)
    assert who.status_code == 200, who.content
    assert who.parsed.organisation_id == org.id and value(who.parsed.scope) == "READ"
    assert who.headers["x-request-id"].startswith("req_")
    assert who.headers.get("RateLimit-Remaining") is not None

    # 2. a donor
    donor_create = ops["donors_create"]
    donor_body = body_model(donor_create).from_dict(
        {"first_name": "Alice", "last_name": "Nguyen", "email": "alice@example.com"}
    )
    created = donor_create.sync_detailed(client=write, body=donor_body)
    assert created.status_code == 201, created.content
    donor = created.parsed
    assert donor.email == "alice@example.com"

    # 3. a donation, sent twice with one Idempotency-Key, given per call
    donation_create = ops["donations_create"]
    params = inspect.signature(donation_create.sync_detailed).parameters
    assert "idempotency_key" in params, (
        "donations_create takes no per-call idempotency_key: the Idempotency-Key header is not in the document "
        f"(parameters: {list(params)})"
    )
    monetary = body_model(donation_create, "monetary")
    in_kind = body_model(donation_create, "in_kind")
    day = (dt.date.today() - dt.timedelta(days=3)).isoformat()

    def donation(amount, *, kind="MONETARY", key=None):
        if kind == "MONETARY":
            body = monetary.from_dict(
                {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": amount, "donation_date": day,
                 "payment_method": "BANK_TRANSFER"}
            )
        else:
            body = in_kind.from_dict(
                {"donor_id": donor.id, "donation_type": "IN_KIND", "amount_cents": amount, "donation_date": day,
                 "in_kind_category": "SERVICES", "in_kind_description": "Pro bono legal advice"}
            )
        return donation_create.sync_detailed(client=write, body=body, idempotency_key=key or UNSET)

    key = str(uuid.uuid4())
    first = donation(2500, key=key)
    assert first.status_code == 201, first.content
    assert first.headers.get("Idempotent-Replayed") in (None, "false")
    replay = donation(2500, key=key)
    assert replay.status_code == 201, replay.content
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.parsed.id == first.parsed.id
    other = donation(2500, key=str(uuid.uuid4()))  # another key, another donation: the key was this call's only
    assert other.status_code == 201 and other.parsed.id != first.parsed.id, other.content
    assert other.headers.get("Idempotent-Replayed") in (None, "false")
    assert not any(h.lower() == "idempotency-key" for h in write.get_httpx_client().headers), "the shared client kept the key"
    assert hasattr(first.parsed, "jurisdiction"), "the generated Donation model has no jurisdiction"

    second = donation(5000)
    third = donation(420000, kind="IN_KIND")
    assert second.status_code == 201 and third.status_code == 201, (second.content, third.content)
    assert value(third.parsed.donation_type) == "IN_KIND" and value(third.parsed.in_kind_category) == "SERVICES"
    all_ids = {first.parsed.id, other.parsed.id, second.parsed.id, third.parsed.id}

    # 4. pagination: limit + starting_after
    donations_list = ops["donations_list"]
    page1 = donations_list.sync_detailed(client=read, limit=3)
    assert page1.status_code == 200, page1.content
    assert len(page1.parsed.data) == 3 and page1.parsed.has_more is True
    page2 = donations_list.sync_detailed(client=read, limit=3, starting_after=page1.parsed.data[-1].id)
    assert page2.status_code == 200, page2.content
    assert len(page2.parsed.data) == 1 and page2.parsed.has_more is False
    assert {d.id for d in page1.parsed.data + page2.parsed.data} == all_ids

    # 5. a bracket filter
    gte = donations_list.sync_detailed(client=read, **{kwarg(donations_list, "amount_cents[gte]"): 5000})
    assert gte.status_code == 200, gte.content
    assert {d.id for d in gte.parsed.data} == {second.parsed.id, third.parsed.id}

    # 6. expand[]=donor
    expand_kw = kwarg(donations_list, "expand[]")
    expanded = donations_list.sync_detailed(client=read, **{expand_kw: [list_item_enum(donations_list, expand_kw)("donor")]})
    assert expanded.status_code == 200, expanded.content
    assert expanded.parsed.data and all(d.donor.email == "alice@example.com" for d in expanded.parsed.data)
    retrieve = ops["donations_retrieve"]
    one = retrieve.sync_detailed(
        first.parsed.id, client=read, **{kwarg(retrieve, "expand[]"): [list_item_enum(retrieve, kwarg(retrieve, "expand[]"))("donor")]}
    )
    assert one.status_code == 200 and one.parsed.donor.id == donor.id, one.content

    # 7. typed errors: the envelope model, its code, and existing_id on a duplicate
    missing = retrieve.sync_detailed("cm3doesnotexist0000000000", client=read)
    assert missing.status_code == 404, missing.content
    assert type(missing.parsed).__name__ == "ErrorEnvelope", type(missing.parsed)
    assert value(missing.parsed.error.code) == "not_found"
    assert missing.parsed.error.request_id == missing.headers["x-request-id"]
    duplicate = donor_create.sync_detailed(
        client=write, body=body_model(donor_create).from_dict({"first_name": "Alice", "email": "alice@example.com"})
    )
    assert duplicate.status_code == 409, duplicate.content
    assert type(duplicate.parsed).__name__ == "ErrorEnvelope", type(duplicate.parsed)
    assert value(duplicate.parsed.error.code) == "conflict"
    assert "existing_id" in typing.get_type_hints(type(duplicate.parsed.error)), (
        "ErrorDetail does not declare existing_id"
    )
    assert duplicate.parsed.error.existing_id == donor.id

"""Distribution passphrases and the recipient-account exchange, through the API
with real keys: success, every refusal, the failed-attempt limit, list/retrieve/
PATCH, and isolation between organisations and between live and sandbox."""
from __future__ import annotations

import concurrent.futures
import hashlib
import math
import re

import pytest

from organisations.models import AuditEntry
from recommendations import services
from recommendations.services import links as link_services
from recommendations.models import DistributionPassphrase, RecipientOrgAccountLink
from tests.conftest import client_for, make_key, make_org
from tests.recommendations.conftest import SYSTEM, audit_actions, link, passphrase_for
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db(transaction=False)

URL = "/api/v1/recipient-accounts"


def post(client, body):
    return client.post(URL, body, format="json")


# --- the passphrase itself -------------------------------------------------------------

def test_wordlist_has_2048_distinct_words_and_six_words_give_over_60_bits():
    words = services.wordlist()
    assert len(words) == len(set(words)) >= 2048
    assert all(re.fullmatch(r"[a-z]+", w) for w in words)
    assert services.PASSPHRASE_WORDS * math.log2(len(set(words))) >= 60
    assert services.passphrase_entropy_bits() == pytest.approx(66.0)


def test_generated_passphrase_is_random_words_stored_only_hashed(org):
    created = services.distribution_passphrase_generate(organisation=org, actor=SYSTEM)
    words = created.plaintext.split(" ")
    assert len(words) == 6 and set(words) <= set(services.wordlist())
    row = DistributionPassphrase.objects.get(pk=created.passphrase.id)
    assert row.hashed == hashlib.sha256("-".join(words).encode()).hexdigest()
    # The plaintext appears nowhere in the row, nor in the audit trail.
    for value in (row.hashed, str(row.__dict__)):
        assert created.plaintext not in value
    assert not any(created.plaintext in str(e.after) for e in AuditEntry.objects.for_organisation(org))
    again = services.distribution_passphrase_generate(organisation=org, actor=SYSTEM)
    assert again.plaintext != created.plaintext
    assert DistributionPassphrase.objects.for_organisation(org).filter(ended_at__isnull=True).count() == 1
    assert audit_actions(org)[-3:] == ["distribution_passphrase.created", "distribution_passphrase.rotated", "distribution_passphrase.created"]


@pytest.mark.parametrize("typed", ["{p}", "{P}", "  {p}  ", "{dashed}", "{double_spaced}"])
def test_passphrase_is_matched_case_and_separator_insensitively(org, write_client, recipients, typed):
    plaintext = passphrase_for(recipients[0])
    variant = typed.format(p=plaintext, P=plaintext.upper(), dashed=plaintext.replace(" ", "-"),
                           double_spaced=plaintext.replace(" ", "  "))
    response = post(write_client, {"passphrase": variant, "label": "ACF main donations"})
    assert response.status_code == 201, response.content


# --- the exchange ----------------------------------------------------------------------------

def test_exchange_creates_a_link_owned_by_the_caller(org, write_client, recipients):
    recipient = recipients[0]
    response = post(write_client, {"passphrase": passphrase_for(recipient), "label": "ACF main donations"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "object", "label", "recipient_organisation_id", "recipient_org_name", "is_active",
                         "can_receive_funds", "deactivated_by", "introduction_id", "created_at", "updated_at"}
    assert body["object"] == "recipient_org_account_link"
    assert body["label"] == "ACF main donations"
    assert body["recipient_org_name"] == recipient.name
    assert body["recipient_organisation_id"] == recipient.id
    assert body["is_active"] is True and body["can_receive_funds"] is True
    assert body["deactivated_by"] is None and body["introduction_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["created_at"])
    stored = RecipientOrgAccountLink.objects.get(pk=body["id"])
    assert stored.organisation_id == org.id and stored.recipient_organisation_id == recipient.id
    # Audit = event: the owner's entry carries the object exactly as the API renders it.
    entry = AuditEntry.objects.for_organisation(org).get(action="recipient_org_account_link.created")
    assert entry.after == write_client.get(f"{URL}/{body['id']}").json()
    assert "introduction_id" in entry.after
    # The recipient's own trail records who linked to it.
    assert audit_actions(recipient)[-1] == "distribution_link.created"


def test_read_key_cannot_exchange(read_client, recipients):
    assert_error(post(read_client, {"passphrase": passphrase_for(recipients[0]), "label": "x"}), 403, "forbidden")


def test_no_key_is_401(anon_client):
    assert_error(anon_client.get(URL), 401, "unauthorized")


@pytest.mark.parametrize("body, code, param", [
    ({"label": "x"}, "invalid_request", "passphrase"),
    ({"passphrase": "alpha beta"}, "invalid_request", "label"),
    ({"passphrase": 123, "label": "x"}, "invalid_request", "passphrase"),
    ({"passphrase": "a b c", "label": "x", "extra": 1}, "invalid_request", "extra"),
    ({"passphrase": "   ", "label": "x"}, "validation_failed", "passphrase"),
    ({"passphrase": "a b c", "label": "   "}, "validation_failed", "label"),
])
def test_malformed_bodies(write_client, body, code, param):
    assert_error(post(write_client, body), 400, code, param=param)


def test_wrong_passphrase_is_validation_failed(write_client, recipients):
    passphrase_for(recipients[0])
    error = assert_error(post(write_client, {"passphrase": "abandon ability able about above absent", "label": "x"}),
                         400, "validation_failed", param="passphrase")
    assert error["reason"] == "passphrase_invalid"
    assert not RecipientOrgAccountLink.objects.exists()


def test_rotated_passphrase_stops_working_and_the_new_one_works(write_client, recipients):
    old = passphrase_for(recipients[0])
    new = passphrase_for(recipients[0])  # rotation
    assert_error(post(write_client, {"passphrase": old, "label": "x"}), 400, "validation_failed", param="passphrase")
    assert post(write_client, {"passphrase": new, "label": "x"}).status_code == 201


def test_revoked_passphrase_stops_working_and_existing_links_stay(org, other_org, write_client, recipients):
    recipient = recipients[0]
    plaintext = passphrase_for(recipient)
    earlier = services.recipient_link_exchange(organisation=other_org, actor=SYSTEM, passphrase=plaintext, label="x")
    services.distribution_passphrase_revoke(organisation=recipient, actor=SYSTEM)
    assert_error(post(write_client, {"passphrase": plaintext, "label": "x"}), 400, "validation_failed", param="passphrase")
    earlier.refresh_from_db()
    assert earlier.is_active


def test_linking_to_yourself_is_refused(org, write_client):
    error = assert_error(post(write_client, {"passphrase": passphrase_for(org), "label": "me"}), 400, "validation_failed",
                         param="passphrase")
    assert error["reason"] == "self_link"


def test_an_existing_link_is_409_naming_it(write_client, recipients):
    recipient = recipients[0]
    first = post(write_client, {"passphrase": passphrase_for(recipient), "label": "first"}).json()
    error = assert_error(post(write_client, {"passphrase": passphrase_for(recipient), "label": "second"}), 409, "conflict")
    assert first["id"] in error["message"] and error["existing_id"] == first["id"]
    assert RecipientOrgAccountLink.objects.filter(recipient_organisation=recipient).count() == 1


def test_an_inactive_existing_link_is_still_409(write_client, recipients):
    recipient = recipients[0]
    first = post(write_client, {"passphrase": passphrase_for(recipient), "label": "first"}).json()
    write_client.patch(f"{URL}/{first['id']}", {"is_active": False}, format="json")
    assert assert_error(post(write_client, {"passphrase": passphrase_for(recipient), "label": "again"}), 409, "conflict")["existing_id"] == first["id"]


# --- sandbox --------------------------------------------------------------------------------

def test_sandbox_links_only_to_sandbox(org, sandbox, write_client, sandbox_client):
    live_recipient = make_org("Live Recipient")
    sandbox_recipient = live_recipient.sandbox
    live_pass = passphrase_for(live_recipient)
    sandbox_pass = passphrase_for(sandbox_recipient)
    # A live passphrase from a sandbox key behaves exactly as a wrong one, and the reverse.
    assert assert_error(post(sandbox_client, {"passphrase": live_pass, "label": "x"}), 400, "validation_failed",
                        param="passphrase")["reason"] == "passphrase_invalid"
    assert assert_error(post(write_client, {"passphrase": sandbox_pass, "label": "x"}), 400, "validation_failed",
                        param="passphrase")["reason"] == "passphrase_invalid"
    made = post(sandbox_client, {"passphrase": sandbox_pass, "label": "test recipient"})
    assert made.status_code == 201 and made.json()["recipient_organisation_id"] == sandbox_recipient.id
    # Sandbox and live see only their own links.
    assert [x["id"] for x in sandbox_client.get(URL).json()["data"]] == [made.json()["id"]]
    assert write_client.get(URL).json()["data"] == []
    assert_error(write_client.get(f"{URL}/{made.json()['id']}"), 404, "not_found")


def test_live_org_cannot_link_to_its_own_sandbox_or_back(org, sandbox, write_client, sandbox_client):
    assert_error(post(write_client, {"passphrase": passphrase_for(sandbox), "label": "x"}), 400, "validation_failed", param="passphrase")
    assert_error(post(sandbox_client, {"passphrase": passphrase_for(org), "label": "x"}), 400, "validation_failed", param="passphrase")


# --- the failed-attempt limit ------------------------------------------------------------------

WRONG = "zoo zoo zoo zoo zoo zoo"


def test_ten_wrong_attempts_an_hour_then_429_with_retry_after(org, write_client, recipients):
    good = passphrase_for(recipients[0])
    for _ in range(services.FAILED_ATTEMPT_LIMIT):
        assert_error(post(write_client, {"passphrase": WRONG, "label": "x"}), 400, "validation_failed", param="passphrase")
    response = post(write_client, {"passphrase": WRONG, "label": "x"})
    assert_error(response, 429, "rate_limited")
    retry_after = int(response["Retry-After"])
    assert 3000 < retry_after <= 3600
    # Even the right passphrase waits: otherwise the limit would leak which guess is right.
    assert_error(post(write_client, {"passphrase": good, "label": "x"}), 429, "rate_limited")
    assert not RecipientOrgAccountLink.objects.exists()
    # The limit is per organisation: another organisation is unaffected.
    other = client_for(make_key(make_org("Unrelated"), "WRITE"))
    assert post(other, {"passphrase": good, "label": "x"}).status_code == 201
    # When the window ends, attempts are allowed again.
    redis, key = link_services._redis(), link_services._attempts_key(org)
    redis.pexpire(key, 50)
    import time

    deadline = time.monotonic() + 5
    while redis.exists(key) and time.monotonic() < deadline:  # wait on the window's end, not a fixed time
        time.sleep(0.01)
    assert not redis.exists(key)
    assert post(write_client, {"passphrase": good, "label": "x"}).status_code == 201


def test_successes_and_refusals_with_a_right_passphrase_do_not_count(org, write_client, recipients):
    for recipient in recipients:
        assert post(write_client, {"passphrase": passphrase_for(recipient), "label": "x"}).status_code == 201
    for _ in range(5):
        assert_error(post(write_client, {"passphrase": passphrase_for(recipients[0]), "label": "x"}), 409, "conflict")
        assert_error(post(write_client, {"passphrase": passphrase_for(org), "label": "x"}), 400, "validation_failed")
    for _ in range(services.FAILED_ATTEMPT_LIMIT):
        assert_error(post(write_client, {"passphrase": WRONG, "label": "x"}), 400, "validation_failed", param="passphrase")
    assert_error(post(write_client, {"passphrase": WRONG, "label": "x"}), 429, "rate_limited")


def test_sandbox_has_its_own_attempt_budget(org, write_client, sandbox_client):
    for _ in range(services.FAILED_ATTEMPT_LIMIT):
        post(write_client, {"passphrase": WRONG, "label": "x"})
    assert_error(post(write_client, {"passphrase": WRONG, "label": "x"}), 429, "rate_limited")
    assert_error(post(sandbox_client, {"passphrase": WRONG, "label": "x"}), 400, "validation_failed", param="passphrase")


def test_concurrent_guesses_never_get_more_than_ten_tries(org):
    """20 threads reserve attempts at once: exactly 10 get through (atomic INCR)."""
    def attempt(_):
        try:
            link_services._attempt_reserve(org)
            return "tried"
        except link_services.RateLimited:
            return "limited"

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert outcomes.count("tried") == services.FAILED_ATTEMPT_LIMIT
    assert outcomes.count("limited") == 20 - services.FAILED_ATTEMPT_LIMIT


def test_redis_down_refuses_the_exchange_with_503(org, write_client, recipients, monkeypatch):
    class Down:
        def eval(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(link_services, "_redis", lambda: Down())
    response = post(write_client, {"passphrase": passphrase_for(recipients[0]), "label": "x"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert not RecipientOrgAccountLink.objects.exists()


# --- list, retrieve, PATCH -------------------------------------------------------------------------

def test_list_newest_first_with_is_active_filter(org, read_client, write_client, links):
    body = read_client.get(URL).json()
    assert body["has_more"] is False
    assert [x["id"] for x in body["data"]] == [x.id for x in reversed(links)]
    write_client.patch(f"{URL}/{links[1].id}", {"is_active": False}, format="json")
    assert [x["id"] for x in read_client.get(URL, {"is_active": "false"}).json()["data"]] == [links[1].id]
    assert [x["id"] for x in read_client.get(URL, {"is_active": "true"}).json()["data"]] == [links[2].id, links[0].id]
    assert_error(read_client.get(URL, {"is_active": "maybe"}), 400, "validation_failed", param="is_active")
    assert_error(read_client.get(URL, {"active": "true"}), 400, "invalid_request", param="active")
    page = read_client.get(URL, {"limit": 2}).json()
    assert len(page["data"]) == 2 and page["has_more"] is True


def test_list_query_count_is_flat(isolated_key_generation, org, read_client, links, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        assert len(read_client.get(URL).json()["data"]) == 3


def test_retrieve_and_cross_org_404(org, read_client, other_write_client, links):
    body = read_client.get(f"{URL}/{links[0].id}").json()
    assert body["id"] == links[0].id and body["recipient_org_name"] == links[0].recipient_organisation.name
    assert_error(other_write_client.get(f"{URL}/{links[0].id}"), 404, "not_found")
    assert_error(other_write_client.patch(f"{URL}/{links[0].id}", {"label": "mine"}, format="json"), 404, "not_found")
    assert_error(read_client.get(f"{URL}/cnotarealid000000000000000"), 404, "not_found")


def test_patch_label_and_is_active(org, write_client, read_client, links):
    target = links[0]
    body = write_client.patch(f"{URL}/{target.id}", {"label": "Renamed"}, format="json").json()
    assert body["label"] == "Renamed"
    off = write_client.patch(f"{URL}/{target.id}", {"is_active": False}, format="json").json()
    assert off["is_active"] is False and off["can_receive_funds"] is False and off["deactivated_by"] == "OWNER"
    on = write_client.patch(f"{URL}/{target.id}", {"is_active": True}, format="json").json()
    assert on["is_active"] is True and on["deactivated_by"] is None
    updates = AuditEntry.objects.for_organisation(org).filter(action="recipient_org_account_link.updated", object_id=target.id)
    assert updates.count() == 3
    assert updates.order_by("-created_at").first().after == read_client.get(f"{URL}/{target.id}").json()
    # An unchanged PATCH writes nothing.
    write_client.patch(f"{URL}/{target.id}", {"label": "Renamed"}, format="json")
    assert updates.count() == 3
    assert_error(read_client.patch(f"{URL}/{target.id}", {"label": "x"}, format="json"), 403, "forbidden")
    assert_error(write_client.patch(f"{URL}/{target.id}", {"is_active": "no"}, format="json"), 400, "invalid_request", param="is_active")
    assert_error(write_client.patch(f"{URL}/{target.id}", {"label": ""}, format="json"), 400, "validation_failed", param="label")
    assert_error(write_client.patch(f"{URL}/{target.id}", {"recipient_organisation_id": "x"}, format="json"), 400, "invalid_request")
    assert_error(write_client.delete(f"{URL}/{target.id}"), 405, "method_not_allowed")


def test_a_link_the_recipient_deactivated_cannot_be_reactivated_by_the_owner(org, write_client, links, recipients):
    services.recipient_link_set_active_by_recipient(recipient=recipients[0], actor=SYSTEM, link_id=links[0].id, active=False)
    body = write_client.get(f"{URL}/{links[0].id}").json()
    assert body["is_active"] is False and body["deactivated_by"] == "RECIPIENT"
    error = assert_error(write_client.patch(f"{URL}/{links[0].id}", {"is_active": True}, format="json"), 400,
                         "validation_failed", param="is_active")
    assert error["reason"] == "deactivated_by_recipient"
    # The owner learns of it through its own trail (and so its webhooks).
    assert audit_actions(org, links[0].id)[-1] == "recipient_org_account_link.updated"
    services.recipient_link_set_active_by_recipient(recipient=recipients[0], actor=SYSTEM, link_id=links[0].id, active=True)
    assert write_client.get(f"{URL}/{links[0].id}").json()["is_active"] is True


def test_a_recipient_cannot_touch_links_to_someone_else(links, recipients):
    from together.exceptions import NotFound

    with pytest.raises(NotFound):
        services.recipient_link_set_active_by_recipient(recipient=recipients[1], actor=SYSTEM, link_id=links[0].id, active=False)


def test_idempotency_key_replays_the_exchange(write_client, recipients):
    body = {"passphrase": passphrase_for(recipients[0]), "label": "x"}
    first = write_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="exchange-1")
    again = write_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="exchange-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert RecipientOrgAccountLink.objects.count() == 1


def test_link_helper_used_by_other_tests(org, recipients):
    made = link(org, recipients[0], "x")
    assert made.organisation_id == org.id

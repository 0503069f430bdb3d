"""Delivery ids (the `webhook-id` header receivers deduplicate on): `dlv_` + a ULID."""
from __future__ import annotations

import time

from webhooks.models import CROCKFORD, new_delivery_id, new_delivery_ids


def _ulid_ms(delivery_id: str) -> int:
    value = 0
    for ch in delivery_id[4:14]:  # the ULID's first 10 characters: its milliseconds
        value = value * 32 + CROCKFORD.index(ch)
    return value


def test_a_batch_of_ids_are_distinct_ulids_of_this_millisecond():
    before = int(time.time() * 1000)
    ids = new_delivery_ids(2_000)
    after = int(time.time() * 1000)
    assert len(set(ids)) == 2_000
    for delivery_id in ids:
        assert delivery_id.startswith("dlv_") and len(delivery_id) == 30
        assert set(delivery_id[4:]) <= set(CROCKFORD)
        assert before <= _ulid_ms(delivery_id) <= after
    # The random part is spread over the whole alphabet, not a few characters of it.
    assert set("".join(i[14:] for i in ids)) == set(CROCKFORD)


def test_ids_made_later_sort_later():
    first = new_delivery_id()
    while int(time.time() * 1000) <= _ulid_ms(first):  # the next millisecond
        pass
    assert new_delivery_id()[:14] > first[:14]

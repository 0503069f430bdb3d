"""Authenticated API keys, remembered for a short while in each server process.

Reading the key and its organisation is most of an API request's cost when the
answer itself is small (issue 15), so each process keeps what it read, for at
most CACHE_SECONDS, under the SHA-256 of the plaintext (the key's own
`hashed_key`: a remembered entry is only ever found by the same plaintext).

Revocation reaches every process at once through Redis. One value in Redis,
the *generation* of the API keys, is replaced by a fresh random token whenever
an API key or an organisation is saved or deleted (at once, and again when the
transaction commits). An entry remembers the generation it was read under: it
is used only while that is still the generation, which is checked on every
request in the same Lua call that sets the last-used marker and takes the
rate-limit token (together/api/throttling.py: one round trip). A request that
finds the generation moved on reads the key from the database again, as does
any request when Redis does not answer (no generation can be checked then).

Order matters for a miss: the generation is read *before* the database, so a
change that commits after the read always moves the generation on after it.
A random token rather than a counter, so that a Redis that lost its data can
never come back to a value an old entry remembers.

While Redis does not answer, every request reads the key from the database,
and a process that meets the outage forgets what it remembered. The one gap:
a key revoked while Redis is unreachable (its generation cannot move on) may
still be accepted, once Redis is back, by a process that remembered it before
the outage and served no request during it, for at most CACHE_SECONDS.
"""
from __future__ import annotations

import copy
import logging
import secrets
import threading
import time
from dataclasses import dataclass

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from together.ratelimit import key_prefix
from together.redis import client

log = logging.getLogger("together.organisations")

CACHE_SECONDS = 60.0
MAX_ENTRIES = 2048

_entries: dict[str, "_Entry"] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class _Entry:
    key: object  # organisations.models.ApiKey, with .organisation loaded; copied out, never handed out itself
    generation: str
    stored_at: float


def generation_key() -> str:
    return f"{key_prefix()}:apikeys:generation"


def generation_read() -> str:
    """The current generation (made when Redis has none). Raises when Redis does not answer."""
    redis_client = client()
    name = generation_key()
    value = redis_client.get(name)
    if value is None:
        redis_client.set(name, secrets.token_hex(8), nx=True)
        value = redis_client.get(name)
    return value.decode() if isinstance(value, bytes) else str(value)


def generation_bump() -> None:
    """Forget every remembered key in every process. Best effort: with Redis down
    no process can check a generation, so none uses what it remembers."""
    try:
        client().set(generation_key(), secrets.token_hex(8))
    except Exception as exc:  # noqa: BLE001
        log.warning("could not move the API keys' generation on: %s", exc)
    with _lock:
        _entries.clear()


def changed(**_kwargs) -> None:
    """A key or an organisation was saved or deleted: now (so this transaction's own later requests, and tests
    inside one transaction, read it afresh) and again once it commits (so no process keeps what it read between
    the two)."""
    generation_bump()
    transaction.on_commit(generation_bump, robust=True)


changed.__qualname__ = "organisations.keycache.changed"


def connect_signals() -> None:
    from organisations.models import ApiKey, Organisation

    for model in (ApiKey, Organisation):
        post_save.connect(changed, sender=model, dispatch_uid=f"keycache-save-{model.__name__}", weak=False)
        post_delete.connect(changed, sender=model, dispatch_uid=f"keycache-delete-{model.__name__}", weak=False)


def remembered(hashed: str):
    """(a copy of the remembered key, its generation), or (None, None)."""
    entry = _entries.get(hashed)
    if entry is None:
        return None, None
    if time.monotonic() - entry.stored_at > CACHE_SECONDS:
        with _lock:
            if _entries.get(hashed) is entry:
                del _entries[hashed]
        return None, None
    return _copy(entry.key), entry.generation


def remember(hashed: str, key, generation: str) -> None:
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[hashed] = _Entry(key=_copy(key), generation=generation, stored_at=time.monotonic())


def forget_all() -> None:
    with _lock:
        _entries.clear()


def _copy(key):
    """A key and organisation of the request's own: a request may change its copies without touching another's."""
    out = copy.copy(key)
    out._state.fields_cache = {"organisation": copy.copy(key._state.fields_cache["organisation"])}
    return out

"""The second tenancy guard in tests: every request the test client (or the live
server) handles runs under `together.models.tenant_guard`, so an unscoped query
of a tenant model in a view, a serializer, a form, a template or a service fails
the test loudly (UnscopedTenantQuery). Test code itself (fixtures, assertions) is
outside the request and may read freely."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.core.signals import request_finished, request_started

from together.models import _GUARD


def _on(**_kwargs):
    _GUARD.set(True)


def _off(**_kwargs):
    _GUARD.set(False)


@contextmanager
def guard_requests():
    """Every request handled inside this block runs under the guard."""
    request_started.connect(_on, dispatch_uid="tenant_guard_on")
    request_finished.connect(_off, dispatch_uid="tenant_guard_off")
    try:
        yield
    finally:
        request_started.disconnect(dispatch_uid="tenant_guard_on")
        request_finished.disconnect(dispatch_uid="tenant_guard_off")
        _GUARD.set(False)


@pytest.fixture
def tenant_guard_requests():
    with guard_requests():
        yield

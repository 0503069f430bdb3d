import pytest

from tests.support.tenant_guard import guard_requests


@pytest.fixture(autouse=True)
def _tenant_guard():
    """Every API request here runs under the second tenancy guard (tests/support/tenant_guard.py)."""
    with guard_requests():
        yield

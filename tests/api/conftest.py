import pytest

from tests.support.tenant_guard import tenant_guard_requests  # noqa: F401


@pytest.fixture(autouse=True)
def _tenant_guard(tenant_guard_requests):
    """Every API request here runs under the second tenancy guard."""

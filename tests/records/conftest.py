import pytest


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    # Some tables fire dozens of requests per organisation in well under a second;
    # the rate limiter has its own tests and is not what these prove.
    settings.RATE_LIMIT_ENABLED = False

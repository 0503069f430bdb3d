import pytest


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    # Tables fire many requests per organisation within a second; the rate
    # limiter has its own tests and is not what these prove.
    settings.RATE_LIMIT_ENABLED = False


@pytest.fixture
def eager_celery():
    """Run `.delay()` inline (there is no worker in these tests), restored after."""
    from together.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = before

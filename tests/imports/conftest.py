import pytest


@pytest.fixture(autouse=True)
def _imports_dir(settings, tmp_path):
    settings.IMPORTS_DIR = tmp_path / "imports"
    settings.RATE_LIMIT_ENABLED = False
    from together.celery import app

    # Tasks enqueued on commit run only when a test runs them (explicitly, or in a worker process).
    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    from unittest import mock

    with mock.patch("imports.services.task_send"):
        yield
    app.conf.task_always_eager = before

from unittest import mock

import pytest


@pytest.fixture(autouse=True)
def _imports_dir(settings, tmp_path, request):
    """Uploads in a temporary folder. Tasks enqueued on commit run only when a test
    runs them (explicitly, or in a worker process), unless the module sets
    REAL_TASKS = True: then they run inline (Celery eager), as the dashboard flow needs."""
    settings.IMPORTS_DIR = tmp_path / "imports"
    settings.RATE_LIMIT_ENABLED = False
    from together.celery import app

    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    if getattr(request.module, "REAL_TASKS", False):
        app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
        yield
    else:
        app.conf.task_always_eager = False
        with mock.patch("imports.services.task_send"):
            yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before

"""Fixtures for the sign-in and invitation tests: fast password hashing (the
checks under test are about who may set or use a password, not its cost)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

"""The API's one credential, set in REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]:
keys are the organisations app's, so the class lives here, not in together/."""
from __future__ import annotations

import logging

from rest_framework.authentication import BaseAuthentication

from organisations import keycache
from organisations.models import ApiKey
from organisations.selectors import api_key_authenticate
from organisations.services import TOUCH_INTERVAL_SECONDS, api_key_touch, api_key_touch_marker
from together.actors import Actor
from together.api.throttling import auth_round_trip, rate_limit_take
from together.exceptions import Unauthorized

log = logging.getLogger("together.organisations")

ATTEMPTS = 3  # reads of the key while keys or organisations keep changing under it, before the plain path


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer pc_…`, the only credential. The key alone picks the
    organisation; this is the one place `request.organisation` is set for the API.

    A key read from the database is remembered by this process (organisations.keycache)
    and used again only after Redis confirms, in the same round trip that sets the
    last-used marker and takes the organisation's rate-limit token, that no key or
    organisation changed since it was read. When the view asks for the token
    (`request.rate_limit_wanted`, set by ApiMixin), its answer is left on the request
    as `rate_limit`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            raise Unauthorized("No API key: send Authorization: Bearer pc_...")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer pc_...'.")
        django_request = request._request
        key = self._key(token, want_bucket=getattr(django_request, "rate_limit_wanted", False), django_request=django_request)
        for target in (request, django_request):
            target.organisation = key.organisation
            target.api_key = key
            target.actor = Actor.for_api_key(key, getattr(django_request, "request_id", ""))
        return (None, key)

    def _key(self, token: str, *, want_bucket: bool, django_request) -> ApiKey:
        hashed = ApiKey.hash_plaintext(token)
        for attempt in range(ATTEMPTS):
            key, generation = keycache.remembered(hashed) if attempt == 0 else (None, None)
            fresh = key is None
            if fresh:
                try:
                    generation = keycache.generation_read()  # before the database: see organisations.keycache
                except Exception:  # noqa: BLE001 - Redis down: nothing to check a remembered key against
                    keycache.forget_all()  # nor, after it, a change made while it was down
                    break
                key = self._read(token)
            try:
                trip = auth_round_trip(generation_key=keycache.generation_key(), generation=generation,
                                       touch_key=api_key_touch_marker(key.id), touch_seconds=TOUCH_INTERVAL_SECONDS,
                                       organisation_id=key.organisation_id if want_bucket else None)
            except Exception:  # noqa: BLE001 - Redis down
                keycache.forget_all()
                if fresh:
                    return self._plain(key, want_bucket=want_bucket, django_request=django_request)
                break
            if trip.current:
                if fresh:
                    keycache.remember(hashed, key, generation)
                api_key_touch(api_key=key, marker_set=trip.touched)
                if trip.rate_limit is not None:
                    django_request.rate_limit = trip.rate_limit
                return key
        return self._plain(self._read(token), want_bucket=want_bucket, django_request=django_request)

    @staticmethod
    def _read(token: str) -> ApiKey:
        key = api_key_authenticate(plaintext=token)
        if key is None:
            raise Unauthorized("The API key is unknown or has been revoked.")
        return key

    @staticmethod
    def _plain(key: ApiKey, *, want_bucket: bool, django_request) -> ApiKey:
        """Without the remembered path (Redis down, or keys changing on every try): the key as read, its marker
        and the bucket each on their own (each fails open)."""
        api_key_touch(api_key=key)
        if want_bucket:
            django_request.rate_limit = rate_limit_take(organisation_id=key.organisation_id)
        return key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

"""The API's one credential, set in REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]:
keys are the organisations app's, so the class lives here, not in together/."""
from __future__ import annotations

from rest_framework.authentication import BaseAuthentication

from organisations.selectors import api_key_authenticate
from organisations.services import api_key_touch
from together.actors import Actor
from together.exceptions import Unauthorized


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer pc_…`, the only credential. The key alone picks the
    organisation; this is the one place `request.organisation` is set for the API."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            raise Unauthorized("No API key: send Authorization: Bearer pc_...")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("The Authorization header must be 'Bearer pc_...'.")
        key = api_key_authenticate(plaintext=token)
        if key is None:
            raise Unauthorized("The API key is unknown or has been revoked.")
        api_key_touch(api_key=key)
        django_request = request._request
        for target in (request, django_request):
            target.organisation = key.organisation
            target.api_key = key
            target.actor = Actor.for_api_key(key, getattr(django_request, "request_id", ""))
        return (None, key)

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

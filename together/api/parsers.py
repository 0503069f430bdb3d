from __future__ import annotations

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from together.exceptions import InvalidRequest


class StrictJSONParser(BaseParser):
    """application/json only. Malformed JSON, or a top level that is not an
    object, is 400 invalid_request."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read(settings.API_MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(body) > settings.API_MAX_BODY_BYTES:
            raise InvalidRequest("The request body is larger than 1 MB.")
        if not body.strip():
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"The body is not valid JSON: {exc}.") from exc
        if not isinstance(data, dict):
            raise InvalidRequest("The body must be a JSON object.")
        return data

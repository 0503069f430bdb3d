from __future__ import annotations

import orjson
from django.conf import settings
from rest_framework.parsers import BaseParser

from together.exceptions import InvalidRequest

NUL_IN_BODY = "A string in the body contains a NUL character (\\u0000), which no field may hold."


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
        # In valid JSON a NUL can only arrive escaped: walk the data only when the escape is there.
        param = nul_param(data) if b"\\u0000" in body else None
        if param is not None:
            raise InvalidRequest(NUL_IN_BODY, param=param)
        return data


def nul_param(value, prefix: str = "") -> str | None:
    """The path (`metadata.key`, `allocations[0].name`) of the first string,
    value or key, that holds a NUL: PostgreSQL text and jsonb cannot store one,
    so it is refused here, once, for every field of every body. A key with a
    NUL is named as sent, like a value's key."""
    if isinstance(value, str):
        return prefix if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else key
            if "\x00" in key:
                return name
            found = nul_param(item, name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_param(item, f"{prefix}[{index}]")
            if found is not None:
                return found
    return None

"""Refuse control characters in the URL, and NUL in bodies, before any view runs.

PostgreSQL `text` and `jsonb` cannot hold a NUL character: a `%00` that reached
a lookup (`/api/v1/donors/%00`, `?starting_after=%00`, `/give/%00`) used to end
as a database error, a 500. No id, slug, token or filter value of ours contains
a control character, so the guard answers for every route at once:

- in the path: 404, the route or record cannot exist (the `not_found` envelope
  under /api/, Django's plain 404 page elsewhere). Every C0 character and DEL
  counts, tab and newline included: no path of ours has one.
- in the query string (a name or a value): 400. Under /api/ it is
  `invalid_request` with `param` naming the parameter (the name as sent, so it
  may itself contain the character); elsewhere Django's plain 400 page. Tab,
  newline and carriage return are allowed there (a search box may send them).

A JSON body holding a NUL (`\\u0000`, in any value or key) is refused by the
API's parser (`together.api.parsers`) with 400 `invalid_request` and `param` at
the string; this guard does the same for the API views that never parse their
body. A form post (dashboard, public pages, staff admin) with a NUL in a field's
name or value is a plain 400 page: views read `request.POST` directly too, so
their forms' validators cannot be the only line. A cookie holding a control
character counts as not sent.
"""
from __future__ import annotations

import re

import orjson
from django.conf import settings
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.views import defaults

from together.api.errors import error_response
from together.api.parsers import NUL_IN_BODY, nul_param

# Every C0 control character and DEL.
PATH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
# C0 control characters except tab, newline and carriage return.
QUERY_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def forbidden_query_param(query) -> str | None:
    """The first query parameter (a QueryDict) whose name or a value holds a forbidden character."""
    for name, values in query.lists():
        if QUERY_FORBIDDEN.search(name) or any(QUERY_FORBIDDEN.search(value) for value in values):
            return name
    return None


class InputGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        is_api = request.path.startswith("/api/")
        if PATH_FORBIDDEN.search(request.path):
            if is_api:
                return error_response(request, "not_found", "Not found: the path contains a control character.")
            return defaults.page_not_found(request, Http404("The path contains a control character."))
        # The raw query string first: most requests have none, or a clean one.
        raw = request.META.get("QUERY_STRING", "")
        if raw and ("%" in raw or QUERY_FORBIDDEN.search(raw)):
            param = forbidden_query_param(request.GET)
            if param is not None:
                if is_api:
                    return error_response(
                        request,
                        "invalid_request",
                        f"The query parameter {param!r} contains a control character (such as NUL), which no value may hold.",
                        param=param,
                    )
                return defaults.bad_request(request, ValueError("control character in the query string"))
        _drop_cookies_with_control_characters(request)
        if request.method in ("POST", "PATCH", "PUT", "DELETE"):
            if is_api:
                param = _json_body_nul_param(request)
                if param is not None:
                    return error_response(request, "invalid_request", NUL_IN_BODY, param=param)
            elif _form_has_nul(request):
                return defaults.bad_request(request, ValueError("NUL in a form field"))
        return self.get_response(request)


def _drop_cookies_with_control_characters(request) -> None:
    """A cookie is the client's to send: one holding a control character (a
    quoted `"\\000"` unquotes to NUL) is treated as not sent, so a session or
    organisation lookup never meets it."""
    if "HTTP_COOKIE" not in request.META:
        return
    cookies = request.COOKIES
    if any(PATH_FORBIDDEN.search(value) for value in cookies.values()):
        request.COOKIES = {name: value for name, value in cookies.items() if not PATH_FORBIDDEN.search(value)}


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _form_has_nul(request) -> bool:
    """A dashboard, admin or public form post with NUL in a field's name or
    value. Fields that reach a Django form field are refused by it (CharField's
    ProhibitNullCharactersValidator), but views also read `request.POST`
    directly (an id to look up, an action's row): one rule here answers a plain
    400 for all of them. A browser never sends a NUL from a typed field.
    Uploaded files are not fields: their content is not looked at."""
    if request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower() not in FORM_TYPES:
        return False
    try:
        data = request.POST
    except MultiPartParserError:  # a malformed body is the view's to report, as before
        return False
    return any("\x00" in name or any("\x00" in value for value in values) for name, values in data.lists())


def _json_body_nul_param(request) -> str | None:
    """A NUL in a JSON body, for the API views that never parse theirs (an
    action such as /archive takes no body): they would ignore it and answer
    200, where every view that parses its body answers 400 (the parser checks
    the same thing). Only a JSON body within the size limit that holds the
    escape at all is decoded; anything else is left to the view."""
    if request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= settings.API_MAX_BODY_BYTES:
        return None
    body = request.body
    if b"\\u0000" not in body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None  # the view's parser reports malformed JSON
    return nul_param(data) if isinstance(data, dict) else None

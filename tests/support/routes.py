"""Walk the URL conf: every (method, path template) the API serves."""
from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "/api/v1/"
IGNORED_METHODS = {"options", "head", "trace"}

_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
_TEMPLATE_PARAM = re.compile(r"\{[^}]*\}")


def _pattern_text(pattern) -> str:
    text = str(pattern.pattern)
    text = text.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\.", ".")
    text = _REGEX_GROUP.sub(lambda m: "{" + m.group(1) + "}", text)
    text = _CONVERTER.sub(lambda m: "{" + m.group(1) + "}", text)
    return text


def normalise(template: str) -> str:
    """`/api/v1/donors/{pk}` and `/api/v1/donors/{donor}` are the same route."""
    return _TEMPLATE_PARAM.sub("{}", template)


def _methods(callback) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route: exactly the methods the router mapped
        return {m.upper() for m in actions if m not in IGNORED_METHODS}
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if cls is not None:
        names = getattr(cls, "http_method_names", [])
        return {m.upper() for m in names if m not in IGNORED_METHODS and hasattr(cls, m)}
    return {"*"}  # a plain function view: any method


def walk(resolver: URLResolver | None = None, prefix: str = "/") -> list[tuple[str, str, object]]:
    """(path template, method, callback) for every route, recursively."""
    resolver = resolver or get_resolver()
    out = []
    for entry in resolver.url_patterns:
        text = prefix + _pattern_text(entry)
        if isinstance(entry, URLResolver):
            out += walk(entry, text)
        elif isinstance(entry, URLPattern):
            for method in sorted(_methods(entry.callback)):
                out.append((text, method, entry.callback))
    return out


def api_routes(exclude: tuple[str, ...] = ()) -> set[tuple[str, str]]:
    """(METHOD, normalised template) of every route under /api/v1/."""
    routes = set()
    for template, method, _ in walk():
        if not template.startswith(API_PREFIX) or template in exclude:
            continue
        routes.add((method, normalise(template)))
    return routes

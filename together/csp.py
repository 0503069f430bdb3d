"""Content-Security-Policy for every HTML page.

Django 5.2 has no CSP of its own, so this small middleware sends the policy in
`settings.CSP` (a dict of directive → list of sources) on every HTML response.
Pages load scripts and styles only from our own origin: no inline `<script>`,
no `<style>` element, no `style=""` attribute in our templates (they live in
`static/`). A per-request nonce is available as `request.csp_nonce` and
`{{ csp_nonce }}` (context processor) for the rare tag that must be inline; when
a page used it, `'nonce-…'` joins `script-src` and `style-src`.

To allow another origin on every page extend the dict in settings, e.g.
`CSP["script-src"].append(...)`; a view can widen or replace a directive for its
own responses with `@csp_update(...)` / `@csp_replace(...)`.

Stripe.js is allowed only where it is loaded: a page that takes a card gets the
script's URL from `stripe_js_url(request)`, which adds `settings.CSP_STRIPE` (its
script, frame and API origins) to that response's policy, as the nonce joins only
the policies of pages that used it.
"""
from __future__ import annotations

import secrets
from functools import wraps

from django.conf import settings

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"
NONCE_DIRECTIVES = ("script-src", "style-src")


class _Nonce:
    """A nonce minted on first use: pages that never ask for one keep a plain policy."""

    __slots__ = ("_value",)

    def __init__(self):
        self._value: str | None = None

    @property
    def used(self) -> bool:
        return self._value is not None

    def __str__(self) -> str:
        if self._value is None:
            self._value = secrets.token_urlsafe(18)
        return self._value

    def __bool__(self) -> bool:
        return True

    __html__ = __str__  # safe to print in a template: URL-safe base64


def build_policy(directives: dict[str, list[str] | tuple[str, ...]], *, nonce: str | None = None) -> str:
    parts = []
    for name, sources in directives.items():
        sources = list(sources)
        if nonce and name in NONCE_DIRECTIVES:
            sources.append(f"'nonce-{nonce}'")
        parts.append(" ".join([name, *sources]) if sources else name)
    return "; ".join(parts)


def _merge(directives: dict[str, list[str]], extra: dict) -> dict[str, list[str]]:
    for name, sources in extra.items():
        directives.setdefault(name, [])
        directives[name] += [s for s in sources if s not in directives[name]]
    return directives


def stripe_directives() -> dict[str, list[str]]:
    """settings.CSP with Stripe.js allowed (settings.CSP_STRIPE): the policy of a page that takes a card."""
    return _merge({name: list(sources) for name, sources in settings.CSP.items()}, settings.CSP_STRIPE)


def stripe_js_url(request) -> str:
    """The URL of Stripe.js for a page that loads it; its origins join this response's policy only."""
    request.csp_stripe = True
    return settings.STRIPE_JS_URL


def policy_for(request, response) -> str:
    directives = stripe_directives() if getattr(request, "csp_stripe", False) else \
        {name: list(sources) for name, sources in settings.CSP.items()}
    _merge(directives, getattr(response, "csp_update", {}))
    for name, sources in getattr(response, "csp_replace", {}).items():
        directives[name] = list(sources)
    nonce = getattr(request, "csp_nonce", None)
    return build_policy(directives, nonce=str(nonce) if isinstance(nonce, _Nonce) and nonce.used else None)


class ContentSecurityPolicyMiddleware:
    """Last in MIDDLEWARE: it sees the view's response before the others."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = _Nonce()
        response = self.get_response(request)
        if not settings.CSP or HEADER in response or REPORT_ONLY_HEADER in response:
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if settings.DEBUG and response.status_code in (404, 500):
            return response  # Django's technical error pages (development only) are all inline
        response[REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER] = policy_for(request, response)
        return response


def context_processor(request) -> dict:
    return {"csp_nonce": getattr(request, "csp_nonce", "")}


def _decorator(attribute: str, directives: dict[str, list[str]]):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            response = view(*args, **kwargs)
            merged = dict(getattr(response, attribute, {}))
            merged.update(directives)
            setattr(response, attribute, merged)
            return response

        return wrapped

    return decorator


def csp_update(**directives: list[str]):
    """Add sources to directives for this view: `@csp_update(script_src=["https://js.stripe.com"])`."""
    return _decorator("csp_update", {k.replace("_", "-"): v for k, v in directives.items()})


def csp_replace(**directives: list[str]):
    """Replace directives for this view: `@csp_replace(frame_ancestors=["'self'"])`."""
    return _decorator("csp_replace", {k.replace("_", "-"): v for k, v in directives.items()})


def frameable_by_self(view):
    """The page may be shown in a frame of our own origin (X-Frame-Options and frame-ancestors)."""
    inner = csp_replace(frame_ancestors=["'self'"])(view)

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = inner(*args, **kwargs)
        response["X-Frame-Options"] = "SAMEORIGIN"
        return response

    return wrapped

"""Django settings for Together.

Every setting that differs between machines comes from the environment, with a
default that works on a development machine with PostgreSQL and Redis on
localhost.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "dev-insecure-together-secret-key-change-me-in-production")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h.strip()]
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "together",
    "organisations",
    "donations",
    "compliance",
    "recommendations",
    "engage",
    "payments",
    "webhooks",
    "reports",
    "imports",
    "receipts",
]

MIDDLEWARE = [
    "together.middleware.RequestIdMiddleware",
    "together.input_guard.InputGuardMiddleware",  # control characters in the URL: 404/400, never a 500
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "together.middleware.ApiGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "together.urls"
WSGI_APPLICATION = "together.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "organisations.context.dashboard",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/together")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))}
# A persistent connection is checked before a request reuses it, so one that a
# PostgreSQL restart broke is replaced instead of failing the request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The hot paths' own statements (together/db.py prepared_cursor) are prepared on their
# 5th run on a connection; Django's client-binding cursors are never prepared.
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = int(os.environ.get("DB_PREPARE_THRESHOLD", "5"))
DATABASES["default"].setdefault("TEST", {})
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"]["NAME"] = os.environ["TEST_DATABASE_NAME"]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "together.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "together"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-au"
TIME_ZONE = "Australia/Sydney"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"
# No page may be framed; the giving form, which the recommendation-set editor
# previews in a frame of our own, says so itself (together.csp.frameable_by_self).
X_FRAME_OPTIONS = "DENY"
LOGIN_REDIRECT_URL = "/"

# Bodies over 1 MB are refused with 400 invalid_request.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
API_MAX_BODY_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE

# Development: every email (receipts with their PDFs, invitations) is written to a file
# under var/mail, the local mail sink; production sets EMAIL_BACKEND (SMTP).
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend" if DEBUG
                               else "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Together <no-reply@alltogether.giving>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["organisations.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["together.api.permissions.ApiKeyScopePermission"],
    "DEFAULT_RENDERER_CLASSES": ["together.api.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["together.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "together.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "together.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_FILTER_BACKENDS": [],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Together API",
    "VERSION": "v1",
    "OAS_VERSION": "3.1.0",
    "DESCRIPTION": (BASE_DIR / "docs" / "api.md").read_text(encoding="utf-8"),
    "SERVERS": [{"url": "/", "description": "Current host"}],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SECURITY": [{"apiKey": []}],
    "APPEND_COMPONENTS": {
        "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer pc_..."}}
    },
    "AUTHENTICATION_WHITELIST": [],
    "ENUM_NAME_OVERRIDES": {},
    "PREPROCESSING_HOOKS": ["together.api.schema.preprocess_only_api"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "together.api.schema.postprocess",
        "webhooks.api.schemas.postprocess",
        "together.api.schema.postprocess_describe",
    ],
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "tryItOutEnabled": True},
}

# Rate limit: token bucket per organisation (live and sandbox separate).
RATE_LIMIT_RATE = int(os.environ.get("RATE_LIMIT_RATE", "100"))
RATE_LIMIT_BURST = int(os.environ.get("RATE_LIMIT_BURST", "100"))
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
# Anonymous POSTs that pledge or pay (giving form, donation forms, checkout): at most N per S seconds per client
# address per organisation ("N/S"; "0" turns it off). CLIENT_IP_HEADER: a META key that OUR reverse proxy sets, e.g.
# HTTP_X_FORWARDED_FOR (its last entry is used); empty (the default) means REMOTE_ADDR. See together/ratelimit.py.
PUBLIC_POST_RATE_LIMIT = os.environ.get("PUBLIC_POST_RATE_LIMIT", "10/600")
CLIENT_IP_HEADER = os.environ.get("CLIENT_IP_HEADER", "")

IDEMPOTENCY_KEY_TTL_HOURS = 24

# Federal electoral reform: the cut-over from the financial-year regime to the
# calendar-year regime with caps (compliance.md §2). Read by the regime loader.
import datetime as _dt  # noqa: E402

FEDERAL_REFORM_COMMENCEMENT = _dt.date.fromisoformat(os.environ.get("FEDERAL_REFORM_COMMENCEMENT", "2027-01-01"))

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Ride out a broker (Redis) outage: retry the connection forever, at start-up
# and after losing it, instead of exiting. A late-acked task cut off by the
# loss is cancelled (its ack can no longer reach Redis) and runs again from its
# restored message. The worker's consumer is together.celery's (it survives a
# kombu teardown error); scripts/supervise.py restarts a worker that exits anyway.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 4
CELERY_BROKER_CHANNEL_ERROR_RETRY = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 4,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 10,
}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")  # a test worker of its own takes another
CELERY_BEAT_SCHEDULE = {
    "prune-idempotency-keys": {"task": "together.tasks.prune_idempotency_keys", "schedule": 3600.0},
    # Open introductions past their 14-day TTL become `expired` (api.md §3.6: swept hourly).
    "expire-introductions": {"task": "recommendations.tasks.introductions_expire_sweep", "schedule": 3600.0},
    # Checkout links past their expiry are stored as EXPIRED (readers see it at once).
    "expire-checkout-links": {"task": "engage.tasks.checkout_links_expire_sweep", "schedule": 900.0},
    # Recurring plans due today are charged (or their expected gifts made); overlapping runs are safe.
    "bill-recurring-plans": {"task": "payments.tasks.recurring_billing_sweep", "schedule": 300.0},
    # Coalesced sends whose drain message was lost (together.celery.coalesced_send).
    "coalesced-drain-all": {"task": "together.tasks.coalesced_drain_all", "schedule": 60.0},
}
CELERY_TIMEZONE = "UTC"

# Stripe (together/stripe_gateway.py). Live organisations use STRIPE_SECRET_KEY and
# STRIPE_PUBLISHABLE_KEY, sandboxes the TEST pair. STRIPE_WEBHOOK_SECRET verifies
# Stripe's webhook signatures: several, comma-separated, while one is rotated.
# In development and tests (DEBUG) every default points at localstripe on
# 127.0.0.1:8420 (devtools/localstripe_together.py, started by `make run` and
# `make test`), with test keys a fake accepts; in production (DEBUG=0) the
# defaults are Stripe's own addresses and no keys: production must set the keys
# and the webhook secret, and payments refuse to start until it does.
_STRIPE_LOCAL = "http://127.0.0.1:8420"
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "sk_test_together_dev_live" if DEBUG else "")
STRIPE_TEST_SECRET_KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "sk_test_together_dev_sandbox" if DEBUG else "")
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_together_dev_live" if DEBUG else "")
STRIPE_TEST_PUBLISHABLE_KEY = os.environ.get("STRIPE_TEST_PUBLISHABLE_KEY", "pk_test_together_dev_sandbox" if DEBUG else "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "whsec_together_dev" if DEBUG else "")
STRIPE_WEBHOOK_SECRETS = [s.strip() for s in STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
STRIPE_API_BASE = (os.environ.get("STRIPE_API_BASE") or (_STRIPE_LOCAL if DEBUG else "https://api.stripe.com")).rstrip("/")
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or (
    f"{STRIPE_API_BASE}/js.stripe.com/v3/" if STRIPE_API_BASE != "https://api.stripe.com" else "https://js.stripe.com/v3/"
)

WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", DEBUG)

# Webhooks (webhooks/): the retry schedule in seconds after each failed attempt
# (Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h; jitter
# is added), the claim lease of a delivery batch, the sweep interval, and the
# Celery queue of webhook tasks. Tests shorten them through the environment.
WEBHOOKS_RETRY_SCHEDULE = [
    float(s) for s in os.environ.get("WEBHOOKS_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,50400,72000,86400").split(",") if s.strip()
]
WEBHOOKS_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOKS_TIMEOUT_SECONDS", "15"))
# A claim's lease is short and renewed by the flush while it sends (a heartbeat),
# so a killed worker's batch is claimed again within about this long.
WEBHOOKS_LEASE_SECONDS = float(os.environ.get("WEBHOOKS_LEASE_SECONDS", "20"))
# One flush starts sends for this long, then queues the rest behind other work.
WEBHOOKS_FLUSH_BUDGET_SECONDS = float(os.environ.get("WEBHOOKS_FLUSH_BUDGET_SECONDS", "5"))
# A send that times out or takes this long marks its endpoint slow for
# WEBHOOKS_SLOW_MARK_SECONDS: one round per flush, and only
# WEBHOOKS_SLOW_FLUSH_SLOTS slow flushes at once on the queue (webhooks/queue.py).
WEBHOOKS_SLOW_SECONDS = float(os.environ.get("WEBHOOKS_SLOW_SECONDS", "5"))
WEBHOOKS_SLOW_MARK_SECONDS = float(os.environ.get("WEBHOOKS_SLOW_MARK_SECONDS", "600"))
WEBHOOKS_SLOW_FLUSH_SLOTS = int(os.environ.get("WEBHOOKS_SLOW_FLUSH_SLOTS", "1"))
WEBHOOKS_SWEEP_INTERVAL = float(os.environ.get("WEBHOOKS_SWEEP_INTERVAL", "10"))
WEBHOOKS_QUEUE = os.environ.get("WEBHOOKS_QUEUE", "celery")
WEBHOOKS_BATCH_SIZE = int(os.environ.get("WEBHOOKS_BATCH_SIZE", "200"))
WEBHOOKS_CONCURRENCY_PER_ENDPOINT = int(os.environ.get("WEBHOOKS_CONCURRENCY_PER_ENDPOINT", "8"))
WEBHOOKS_EVENT_RETENTION_DAYS = 30
WEBHOOKS_DISABLE_AFTER_FAILING_DAYS = 5
WEBHOOKS_SECRET_OVERLAP_HOURS = 24
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["WebhookEndpointStatusEnum"] = "webhooks.models.EndpointStatus"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["WebhookDeliveryStatusEnum"] = "webhooks.models.DeliveryStatus"
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update({
    "DonationStatusEnum": "donations.models.Status",
    "ActiveArchivedStatusEnum": "donations.models.CampaignStatus",  # campaigns and revenue codes
    "JurisdictionEnum": "compliance.models.Jurisdiction",
    "ServiceStatusEnum": ["ok", "unavailable"],
    "RecomputeStatusEnum": "compliance.models.RemapStatus",
    "DisclosureObligationStatusEnum": "compliance.models.ObligationStatus",
    "IntroductionStatusEnum": "recommendations.models.IntroductionStatus",
    # The donation create body's oneOf variants (together/api/schema.py, issue 14).
    "DonationTypeEnum": "donations.models.DonationType",
    "MonetaryDonationTypeEnum": [("MONETARY", "Monetary")],
    "InKindDonationTypeEnum": [("IN_KIND", "In Kind")],
})
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update({  # engage: donation forms and checkout links
    "FormStatusEnum": "engage.models.FormStatus",
    "FormSettableStatusEnum": [("DRAFT", "Draft"), ("ACTIVE", "Active"), ("PAUSED", "Paused")],
    "FieldVisibilityEnum": "engage.models.Visibility",
    "RecurringFrequencyEnum": "engage.models.Frequency",
    "CheckoutLinkStatusEnum": "engage.models.LinkStatus",
    "CheckoutPaymentMethodEnum": "engage.models.PaymentMethodType",
    "CheckoutAvailablePaymentMethodEnum": [("CARD", "Card")],
})
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update({  # payments: recurring plans
    "RecurringPlanStatusEnum": "payments.models.PlanStatus",
    "RecurringPlanPaymentMethodEnum": "payments.models.PlanPaymentMethod",
    "PaymentMethodEnum": "donations.models.PaymentMethod",  # the donation's, named as before plans had one too
})
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.tasks.webhook_sweep", "schedule": WEBHOOKS_SWEEP_INTERVAL,
    "options": {"queue": WEBHOOKS_QUEUE, "expires": WEBHOOKS_SWEEP_INTERVAL},  # a backlog keeps one sweep, not hundreds
}
CELERY_BEAT_SCHEDULE["webhooks-prune-events"] = {
    "task": "webhooks.tasks.events_prune", "schedule": 3600.0, "options": {"queue": WEBHOOKS_QUEUE},
}
# Reports: export files carry donors' names and addresses; they go after REPORTS_EXPORT_RETENTION_HOURS (48).
CELERY_BEAT_SCHEDULE["reports-prune-exports"] = {"task": "reports.tasks.export_jobs_prune_task", "schedule": 3600.0}
# A committing import whose worker died (no batch for 2 minutes) is resumed (imports.services.imports_resume_stalled).
CELERY_BEAT_SCHEDULE["imports-resume-stalled"] = {"task": "imports.tasks.imports_resume_stalled_task", "schedule": 60.0}
# Receipts whose after-commit task was lost (broker down) are issued, corrected or withdrawn.
CELERY_BEAT_SCHEDULE["receipts-sweep"] = {"task": "receipts.tasks.receipts_sweep_task", "schedule": 300.0}
# The per-day rollup's delta rows are folded into one row per key (donations.rollups.rollup_compact).
CELERY_BEAT_SCHEDULE["rollup-compact"] = {"task": "donations.tasks.rollup_compact_task", "schedule": 300.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "together.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "together.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}

SPECTACULAR_SETTINGS["SERVE_AUTHENTICATION"] = []
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["rest_framework.permissions.AllowAny"]

# `make bench` serves a bare view beside the API as its baseline.
BENCH_ENDPOINTS = env_bool("BENCH_ENDPOINTS", False)


# --- Security in production ------------------------------------------------------------
# An https SITE_URL switches on secure cookies, HSTS and the redirect to https; each
# can be set on its own through the environment. Behind a proxy that terminates TLS,
# set SECURE_PROXY_SSL_HEADER (e.g. `HTTP_X_FORWARDED_PROTO,https`, only if the proxy
# always sets or strips that header), or the redirect to https never ends.
SITE_IS_HTTPS = SITE_URL.lower().startswith("https://")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", SITE_IS_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", SITE_IS_HTTPS)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600 if SITE_IS_HTTPS else 0)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SITE_IS_HTTPS)
# `preload` asks browsers to hard-code the domain: a decision for the operator, off by default.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", SITE_IS_HTTPS)
# Load balancers probe the health check over plain http.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$"]
_proxy_ssl_header = [part.strip() for part in os.environ.get("SECURE_PROXY_SSL_HEADER", "").split(",") if part.strip()]
if _proxy_ssl_header and (len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_")):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]  # preload is opt-in (above)

# Content-Security-Policy of every HTML page (together/csp.py). Scripts and styles
# come from our origin only; a third party (e.g. Stripe.js) is one `append` here.
CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Stripe.js: its script and its frames (the card Element, 3-D Secure) come from
# STRIPE_JS_URL's origin, its calls go to STRIPE_API_BASE's origin; Stripe's own
# Stripe.js also loads from *.js.stripe.com and frames hooks.stripe.com (3-D Secure).
# In production (DEBUG=0) these are Stripe's hosts (https://js.stripe.com,
# https://api.stripe.com); in development localstripe's (127.0.0.1:8420).
# They are NOT in CSP: only the pages that take a card (the giving form, a donation
# form, a checkout link, a plan's card change) load Stripe.js, and each one asks
# for it with together.csp.stripe_js_url(request), which adds CSP_STRIPE to that
# response's policy alone. Every other page (the dashboard, sign-in, developer,
# admin) keeps script-src 'self'.
def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


CSP_STRIPE = {
    "script-src": [_origin(STRIPE_JS_URL)],
    "frame-src": [_origin(STRIPE_JS_URL)],
    "connect-src": [_origin(STRIPE_API_BASE)],
}
if _origin(STRIPE_JS_URL) == "https://js.stripe.com":
    CSP_STRIPE["script-src"].append("https://*.js.stripe.com")
    CSP_STRIPE["frame-src"] += ["https://*.js.stripe.com", "https://hooks.stripe.com"]
if SITE_IS_HTTPS:
    CSP["upgrade-insecure-requests"] = []
CSP_REPORT_ONLY = env_bool("CSP_REPORT_ONLY", False)
MIDDLEWARE.append("together.csp.ContentSecurityPolicyMiddleware")  # last: sees the view's response first
TEMPLATES[0]["OPTIONS"]["context_processors"].append("together.csp.context_processor")
# Swagger UI: no third-party validator badge (an image from validator.swagger.io).
SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]["validatorUrl"] = None

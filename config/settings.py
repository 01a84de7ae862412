"""Settings, read from the environment (django-environ). One block per integration.

DJANGO_DEBUG is off unless set: that is production, and start-up refuses a missing or published
(core.published_defaults) secret or provider credential, and serves HTTPS only. With DJANGO_DEBUG=true
(bin/demo sets it) every other variable is optional: the project runs the demo on SQLite, an embedded
filesystem broker and the local stand-ins of Wise, Square and Stripe (see sandbox/).
"""

from datetime import timedelta
from pathlib import Path

import environ
import structlog
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.topology import broker_settings, pooled_database
from core.published_defaults import PUBLISHED_DEFAULTS, is_published

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)  # the demo SQLite file and the embedded broker live here

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV_FILE", default=True):  # off: the environment alone (tests of the settings)
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# What production must set; the demo (DEBUG on) falls back to the published sandbox values.
_REQUIRED_IN_PRODUCTION = [
    "DJANGO_SECRET_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "WISE_API_TOKEN",
    "WISE_WEBHOOK_PUBLIC_KEY",
]


def _refuse(variable: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{variable} {problem}. With DJANGO_DEBUG off (production) set each of {', '.join(_REQUIRED_IN_PRODUCTION)} "
        "to your own value; DJANGO_DEBUG=true runs the demo on the published sandbox values."
    )


def _credential(variable: str, *, required: bool = True) -> str:
    """A secret or provider credential from the environment. The values this repository publishes let
    anyone sign a webhook or a session, so outside the demo one of them, or a missing required one,
    stops every process at start-up (web, worker, beat, manage.py)."""
    value: str = env.str(variable, default="")
    if DEBUG:
        return value or PUBLISHED_DEFAULTS[variable]
    if is_published(value):
        raise _refuse(variable, "is a published sandbox value (core/published_defaults.py)")
    if required and not value:
        raise _refuse(variable, "is not set")
    return value


# Outside the demo the settings above refuse the published values; this lets the webhook ingress refuse
# them too, should a settings module switch DEBUG off after that check (tests set it for the stand-ins).
ALLOW_PUBLISHED_DEFAULTS = DEBUG
SECRET_KEY = _credential("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.BackOfficeAdminConfig",  # django.contrib.admin, its default site config.admin_site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as our own static files: /api/docs/ works offline
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "core",
    "audit",
    "webhooks",
    "ledger",
    "affiliates",
    "payouts",
    "pos_sync",
    "loyalty",
    "portal",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the admin's second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.CorrelationIdMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires: turns a lockout into its 429 page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Default: a SQLite file for the demo. Tests and production set DATABASE_URL to PostgreSQL;
# the concurrency guarantees are proven on PostgreSQL only. Behind PgBouncer in transaction pooling
# mode set DATABASE_POOL_MODE=transaction (config.topology; docs/DEPLOYMENT.md): no server-side
# cursors or prepared statements, persistent client connections (DB_CONN_MAX_AGE, default 60 s there).
DATABASE_POOL_MODE = env.str("DATABASE_POOL_MODE", default="session")
DATABASES = {
    "default": pooled_database(
        env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
        pool_mode=DATABASE_POOL_MODE,
        conn_max_age=env.int("DB_CONN_MAX_AGE", default=None),
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat on one file: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- Sign-in: the admin's second factor (django-otp), throttling (django-axes) ---------------
# Every admin user (staff and super-admins: the people who review payouts) signs in with a TOTP
# code (config.admin_site). Always with DEBUG off; the demo turns it on too (bin/demo).
ADMIN_REQUIRE_OTP = not DEBUG or env.bool("ADMIN_REQUIRE_OTP", default=False)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Back office")  # the name authenticator apps show
# Failed sign-ins, on the admin and the affiliate sign-in alike, counted per username and IP address in
# the database (shared by every web process), cleared by a success or after the cool-off. Unlock early:
# delete the row under Axes > Access attempts, or `manage.py axes_reset_username <name>`.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username + IP before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# --- HTTPS and cookies ----------------------------------------------------------------------
# Production defaults (DEBUG off): HTTPS only, secure cookies, HSTS for a year; the demo serves plain
# HTTP on loopback. Behind a proxy that terminates TLS and overwrites X-Forwarded-Proto, set
# DJANGO_SECURE_PROXY_SSL_HEADER=true (otherwise every request looks like HTTP and redirects for ever).
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# The preload directive only makes the domain eligible; listing it at hstspreload.org is a separate step.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "/affiliate/login/"  # affiliates are not staff: the admin login refuses them
LOGIN_REDIRECT_URL = "/affiliate/"

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL, django-environ's form: smtp+tls://user:password@smtp.example.com:587 (STARTTLS),
# smtp+ssl://user:password@smtp.example.com:465 (TLS from the start; user and password
# URL-encoded), consolemail:// (the default: mails go to the log). EMAIL_BACKEND, when set, replaces
# the URL's backend class (the fault-injection suite's mailbox).
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=_email["EMAIL_BACKEND"])
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", default=10)  # a hung SMTP server must not hang a worker
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="backoffice@example.com")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Payments on-call", a) for a in env.list("ALERT_EMAILS", default=["oncall@example.com"])]

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Back office API",
    "DESCRIPTION": "Race-safe payouts, commissions, POS sync and loyalty.",
    "VERSION": "1.0.0",
    # One name per choice set that several serializers share (status, expected_status).
    "ENUM_NAME_OVERRIDES": {
        "PayoutStatusEnum": "payouts.models.PayoutStatus",
        "DiscountStatusEnum": "loyalty.models.DiscountStatus",
    },
    # The docs pages load their scripts and styles from our static files, not from a CDN: they work
    # offline and behind a firewall (drf-spectacular-sidecar ships them; pinned in requirements.txt).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------
# Default: kombu's filesystem transport, an embedded broker that needs no server (demo only).
# Production: redis://... (visibility-timeout redelivery) or amqp://... (RabbitMQ: a quorum queue,
# publisher confirms, per-delivery acks); config.topology and docs/DEPLOYMENT.md say when to pick which.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
_broker = broker_settings(
    CELERY_BROKER_URL, visibility_timeout=env.int("CELERY_VISIBILITY_TIMEOUT", default=3600), var_dir=VAR_DIR
)
CELERY_BROKER_TRANSPORT_OPTIONS = _broker.transport_options
CELERY_TASK_QUEUES = _broker.task_queues  # None: Celery's default queue "celery", classic
CELERY_TASK_DEFAULT_QUEUE_TYPE = _broker.queue_type
CELERY_TASK_CREATE_MISSING_QUEUE_TYPE = _broker.queue_type
CELERY_TASK_DEFAULT_EXCHANGE_TYPE = _broker.exchange_type
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True  # a crash redelivers instead of losing; every task is idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One task reserved per worker process: every task, the money ones included (the Wise dispatch), shares
# the one queue, and a message a busy or dying worker holds is one nobody else can run meanwhile.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep the structured LOGGING below in workers too
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Synced into django-celery-beat's tables when beat starts; edit intervals in the admin after.
CELERY_BEAT_SCHEDULE = {
    "raise-beacon-alerts": {
        "task": "audit.tasks.raise_beacon_alerts",
        "schedule": timedelta(minutes=5),
    },
    "redispatch-stuck-payouts": {
        "task": "payouts.tasks.redispatch_stuck_payouts",
        "schedule": timedelta(minutes=5),
    },
    "poll-processing-payouts": {
        "task": "payouts.tasks.poll_processing_payouts",
        "schedule": timedelta(minutes=15),
    },
    "reevaluate-changed-affiliates": {
        "task": "affiliates.tasks.reevaluate_changed_affiliates",
        "schedule": crontab(minute=7),
    },
    "approve-held-commissions": {
        "task": "affiliates.tasks.approve_held_commissions",
        "schedule": crontab(minute=17),
    },
    "match-unmatched-stripe-adjustments": {
        "task": "affiliates.tasks.match_unmatched_adjustments",
        "schedule": timedelta(minutes=10),
    },
    "push-pending-orders": {
        "task": "pos_sync.tasks.push_pending_orders",
        "schedule": timedelta(minutes=1),
    },
    "apply-loyalty": {
        "task": "loyalty.tasks.apply_loyalty",
        "schedule": timedelta(minutes=30),
    },
    "check-ledger": {
        "task": "ledger.tasks.check_ledger",
        "schedule": crontab(minute=37),  # hourly; a finding raises the critical beacon ledger_check_failed
    },
    "verify-audit-trail": {
        "task": "audit.tasks.verify_audit_trail",
        "schedule": crontab(minute=43),  # hourly; a broken chain raises the critical beacon audit_trail_broken
    },
}

# --- Audit, claims and race beacons ---------------------------------------------------------
BEACON_ALERT_THRESHOLD = env.int("BEACON_ALERT_THRESHOLD", default=5)  # per kind, per hour; critical kinds: the first
# This back office's address as its users reach it: the alert mails link to admin pages with it.
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")

# --- Stripe (commissions webhooks, loyalty promotion codes) ---------------------------------
STRIPE_SECRET_KEY = _credential("STRIPE_SECRET_KEY")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="http://127.0.0.1:8103")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_WEBHOOK_SECRET = _credential("STRIPE_WEBHOOK_SECRET")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)

# --- Wise (payout transfers) ----------------------------------------------------------------
WISE_API_URL = env.str("WISE_API_URL", default="http://127.0.0.1:8101")
WISE_API_TOKEN = _credential("WISE_API_TOKEN")
WISE_PROFILE_ID = env.str("WISE_PROFILE_ID", default="1001")
WISE_WEBHOOK_PUBLIC_KEY = env.str("WISE_WEBHOOK_PUBLIC_KEY", default="", multiline=True)
_WISE_DEMO_PUBLIC_KEY = VAR_DIR / "wise_standin_public.pem"  # written by sandbox/wise.py for the demo
_wise_standin_key = WISE_API_URL.startswith("http://127.0.0.1") and _WISE_DEMO_PUBLIC_KEY.exists()
if DEBUG and not WISE_WEBHOOK_PUBLIC_KEY and _wise_standin_key:
    # Only ever the local stand-in's key, and only in the demo: production sets WISE_WEBHOOK_PUBLIC_KEY.
    WISE_WEBHOOK_PUBLIC_KEY = _WISE_DEMO_PUBLIC_KEY.read_text()
if not DEBUG and not WISE_WEBHOOK_PUBLIC_KEY.strip():
    raise _refuse("WISE_WEBHOOK_PUBLIC_KEY", "is not set (Wise's PEM public key for webhook signatures)")
WISE_TIMEOUT_SECONDS = env.float("WISE_TIMEOUT_SECONDS", default=10.0)
PAYOUT_DISPATCH_GRACE = timedelta(minutes=env.int("PAYOUT_DISPATCH_GRACE_MINUTES", default=5))
PAYOUT_PROCESSING_POLL_AFTER = timedelta(minutes=env.int("PAYOUT_PROCESSING_POLL_AFTER_MINUTES", default=60))
# Per currency, the largest payout ONE super-admin may approve; above it two different ones must.
# "*=<amount>" covers the currencies not listed; a currency with neither needs two approvals for
# every amount (payouts.thresholds, validated at start-up).
PAYOUT_DUAL_APPROVAL_THRESHOLD = env.str(
    "PAYOUT_DUAL_APPROVAL_THRESHOLD", default="USD=1000.00,EUR=1000.00,GBP=1000.00"
)

# --- Square (POS sync) ----------------------------------------------------------------------
SQUARE_BASE_URL = env.str("SQUARE_BASE_URL", default="http://127.0.0.1:8102")
# Only the demo's restaurants are seeded with it: each real connection stores its own token (admin), so
# production may leave it unset, but never at the published sandbox value.
SQUARE_ACCESS_TOKEN = _credential("SQUARE_ACCESS_TOKEN", required=False)
SQUARE_LOCATION_ID = env.str("SQUARE_LOCATION_ID", default="LSANDBOX")
SQUARE_TIMEOUT_SECONDS = env.float("SQUARE_TIMEOUT_SECONDS", default=10.0)
POS_SYNC_BATCH_SIZE = env.int("POS_SYNC_BATCH_SIZE", default=50)
# A push past Square's 24 h key window reads SearchOrders (500 orders a page) before creating: at
# most this many pages, then it stops and the job is a dead letter for a human to look at.
POS_SYNC_SEARCH_MAX_PAGES = env.int("POS_SYNC_SEARCH_MAX_PAGES", default=10)
# Unset: derived from SQUARE_TIMEOUT_SECONDS and POS_SYNC_SEARCH_MAX_PAGES (pos_sync.leases, 9 min
# at the defaults). Set: at least that worst case, or every process refuses to start.
_pos_sync_claim_lease_minutes: int | None = env.int("POS_SYNC_CLAIM_LEASE_MINUTES", default=None)
POS_SYNC_CLAIM_LEASE = (
    None if _pos_sync_claim_lease_minutes is None else timedelta(minutes=_pos_sync_claim_lease_minutes)
)
POS_SYNC_MAX_ATTEMPTS = env.int("POS_SYNC_MAX_ATTEMPTS", default=8)

# --- Affiliates -----------------------------------------------------------------------------
AFFILIATE_CURRENCY = env.str("AFFILIATE_CURRENCY", default="USD")
COMMISSION_HOLD_DAYS = env.int("COMMISSION_HOLD_DAYS", default=30)

# --- Loyalty --------------------------------------------------------------------------------
LOYALTY_COUPON_ID = env.str("LOYALTY_COUPON_ID", default="loyalty-anniversary-10")
LOYALTY_BATCH_SIZE = env.int("LOYALTY_BATCH_SIZE", default=100)

# --- Logging (structlog on top of the standard library) -------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="console")  # "json" in production
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
_shared_processors: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso"),
]
structlog.configure(
    processors=[
        *_shared_processors,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer()
                if LOG_FORMAT == "json"
                else structlog.dev.ConsoleRenderer(colors=False),
            ],
            "foreign_pre_chain": _shared_processors,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "stripe": {"level": "WARNING"},  # the SDK logs every request at INFO
    },
}

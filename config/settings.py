"""Settings, read from the environment (django-environ). One block per integration.

Every variable is optional: without any, the project runs the demo on SQLite, an embedded
filesystem broker and the local stand-ins of Wise, Square and Stripe (see sandbox/).
"""

from datetime import timedelta
from pathlib import Path

import environ
import structlog
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)  # the demo SQLite file and the embedded broker live here

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
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
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.CorrelationIdMiddleware",
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
# the concurrency guarantees are proven on PostgreSQL only.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'demo.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs web, worker and beat on one file: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "/affiliate/login/"  # affiliates are not staff: the admin login refuses them
LOGIN_REDIRECT_URL = "/affiliate/"

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
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
}

# --- Celery ---------------------------------------------------------------------------------
# Default: kombu's filesystem transport, an embedded broker that needs no server (demo only).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control, in the cwd
        "store_processed": False,
    }
else:
    # Keep countdowns well below this: an unacknowledged message is delivered again after it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True  # a crash redelivers instead of losing; every task is idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
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
}

# --- Audit, claims and race beacons ---------------------------------------------------------
BEACON_ALERT_THRESHOLD = env.int("BEACON_ALERT_THRESHOLD", default=5)  # per kind, per hour

# --- Stripe (commissions webhooks, loyalty promotion codes) ---------------------------------
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="sk_test_sandbox")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="http://127.0.0.1:8103")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_sandbox")
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)

# --- Wise (payout transfers) ----------------------------------------------------------------
WISE_API_URL = env.str("WISE_API_URL", default="http://127.0.0.1:8101")
WISE_API_TOKEN = env.str("WISE_API_TOKEN", default="wise-sandbox-token")
WISE_PROFILE_ID = env.str("WISE_PROFILE_ID", default="1001")
WISE_WEBHOOK_PUBLIC_KEY = env.str("WISE_WEBHOOK_PUBLIC_KEY", default="", multiline=True)
_WISE_DEMO_PUBLIC_KEY = VAR_DIR / "wise_standin_public.pem"  # written by sandbox/wise.py for the demo
if not WISE_WEBHOOK_PUBLIC_KEY and WISE_API_URL.startswith("http://127.0.0.1") and _WISE_DEMO_PUBLIC_KEY.exists():
    # Only ever the local stand-in's key: a real Wise URL needs WISE_WEBHOOK_PUBLIC_KEY set explicitly.
    WISE_WEBHOOK_PUBLIC_KEY = _WISE_DEMO_PUBLIC_KEY.read_text()
WISE_TIMEOUT_SECONDS = env.float("WISE_TIMEOUT_SECONDS", default=10.0)
PAYOUT_DISPATCH_GRACE = timedelta(minutes=env.int("PAYOUT_DISPATCH_GRACE_MINUTES", default=5))
PAYOUT_PROCESSING_POLL_AFTER = timedelta(minutes=env.int("PAYOUT_PROCESSING_POLL_AFTER_MINUTES", default=60))

# --- Square (POS sync) ----------------------------------------------------------------------
SQUARE_BASE_URL = env.str("SQUARE_BASE_URL", default="http://127.0.0.1:8102")
SQUARE_ACCESS_TOKEN = env.str("SQUARE_ACCESS_TOKEN", default="square-sandbox-token")
SQUARE_LOCATION_ID = env.str("SQUARE_LOCATION_ID", default="LSANDBOX")
SQUARE_TIMEOUT_SECONDS = env.float("SQUARE_TIMEOUT_SECONDS", default=10.0)
POS_SYNC_BATCH_SIZE = env.int("POS_SYNC_BATCH_SIZE", default=50)
POS_SYNC_CLAIM_LEASE = timedelta(minutes=env.int("POS_SYNC_CLAIM_LEASE_MINUTES", default=10))
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

"""LabFlow settings: everything from the environment (django-environ)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
import pgtrigger
from csp.constants import NONE, SELF

from labflow import embedded

django_stubs_ext.monkeypatch()  # lets admin and DRF generics be subscripted for mypy

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# HTTPS-only cookies, redirects and HSTS; switched off only for a local http run.
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=True)


def _secret_key() -> str:
    if "SECRET_KEY" in env:
        return str(env("SECRET_KEY"))
    if not DEBUG and "DATABASE_URL" in env:
        # A deployment (its own database server) must bring its own key; a local machine on the embedded
        # engines gets one generated under ./var/.
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    key_file = embedded.VAR_DIR / "secret_key"
    if not key_file.exists():
        embedded.VAR_DIR.mkdir(exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens: hashed, expiring, revocable (accounts.admin replaces its admin)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served locally: no CDN
    "django_filters",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    # LabFlow apps, in import order: a later app may import an earlier one only.
    "accounts",
    "patients",
    "alerts",
    "monitoring",
    "specimens",
    "results",
    "assessments",
    "orders",
    "fhir_api",  # FHIR R4 read and search API under /fhir/ (reads every app through its selectors)
    "labflow",  # project-level commands that compose the apps (seed_demo)
]

MIDDLEWARE = [
    "alerts.middleware.PollShortCircuitMiddleware",  # an unchanged poll: 304 from the session row and Redis
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.DatabaseUnavailableMiddleware",  # outside sessions and auth: PostgreSQL away -> 503
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "labflow.urls"
WSGI_APPLICATION = "labflow.wsgi.application"
ASGI_APPLICATION = "labflow.asgi.application"  # web under gunicorn + uvicorn workers (alert push)

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
                "accounts.context_processors.roles",
                "alerts.context_processors.alert_count",
            ],
        },
    },
    {
        # Only the list rows that render hundreds of times a page (labflow/jinja2.py); pages stay Django templates.
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"environment": "labflow.jinja2.environment"},
    },
]

# --- Engines: PostgreSQL and Redis everywhere, embedded when no URL is given ---
DATABASE_URL = env.str("DATABASE_URL", default="") or embedded.postgres_url()
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"]["application_name"] = "labflow"
# Under ASGI (labflow/asgi.py sets DATABASE_POOL) each request's sync code runs in a thread of its own, so
# persistent per-thread connections would pile up: the ASGI web borrows from a psycopg pool instead.
DATABASE_POOL_SIZE = env.int("DATABASE_POOL", default=0)
if DATABASE_POOL_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django requires it with a pool
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 2, "max_size": DATABASE_POOL_SIZE, "timeout": 10}
# DATABASE_URL is the role this process connects as: the owner for `migrate` and `manage.py db_roles`, the runtime
# role (DML only, owns nothing) for web, worker, beat and the MLLP listener (docs/architecture.md §5).
DATABASE_RUNTIME_ROLE = env.str("DATABASE_RUNTIME_ROLE", default="labflow_app")
DATABASE_RUNTIME_PASSWORD = env.str("DATABASE_RUNTIME_PASSWORD", default="")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="") or embedded.redis_url()
_cache_location = REDIS_URL.replace("redis+socket://", "unix://", 1)
# Redis down is a cache miss, never an error on a page (core/cache.py; docs/architecture.md §5).
CACHES = {"default": {"BACKEND": "core.cache.DegradingRedisCache", "LOCATION": _cache_location}}

# --- Auth, sessions, idle timeout ---
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "alerts:inbox"
LOGOUT_REDIRECT_URL = "accounts:login"
# Idle timeout counts only real user activity; background polls do not extend it.
IDLE_TIMEOUT = timedelta(minutes=env.int("IDLE_TIMEOUT_MINUTES", default=15))
SESSION_COOKIE_AGE = env.int("SESSION_MAX_AGE_SECONDS", default=12 * 3600)  # absolute cap
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Sessions live in PostgreSQL only (Django's db store; core/sessions.py): logins and pages keep working while Redis
# is down, and a logout or idle timeout during an outage cannot be undone by a stale cached copy when Redis returns.
SESSION_ENGINE = "core.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]

# --- Security (check --deploy clean when SECURE_HTTPS is on) ---
SESSION_COOKIE_SECURE = SECURE_HTTPS
CSRF_COOKIE_SECURE = SECURE_HTTPS
SECURE_SSL_REDIRECT = SECURE_HTTPS and env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000) if SECURE_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HTTPS
SECURE_HSTS_PRELOAD = SECURE_HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [SELF],
    }
}

# The site's locale: its formats decide, e.g., whether a typed "4,5" is a decimal comma (de, fr) or refused (en).
LANGUAGE_CODE = env.str("LANGUAGE_CODE", default="en-gb")
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first so an anonymous request is told 401 with WWW-Authenticate.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.api.ActionPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "DEFAULT_PARSER_CLASSES": [
        "core.api.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",  # documents every error response (core.api)
    "EXCEPTION_HANDLER": "core.api.exception_handler",
}
# API tokens (POST /api/auth/login/): stored as SHA-512 digests, shown by prefix only, revoked at logout.
REST_KNOX = {
    # A fixed lifetime, not refreshed by use: a token lives no longer than a session's absolute cap.
    "TOKEN_TTL": timedelta(hours=env.float("API_TOKEN_TTL_HOURS", default=12)),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LabFlow API",
    "DESCRIPTION": "Laboratory side of cancer immunotherapy: monitoring tests, alerts, patients.",
    "VERSION": "0.1.0",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SERVE_INCLUDE_SCHEMA": False,  # the schema describes the API, not the endpoint that serves it
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RejectionReasonEnum": "specimens.choices.RejectionReason",
        "SpecimenConditionEnum": "specimens.choices.SpecimenCondition",
        "AlertKindEnum": "alerts.choices.AlertKind",
        "CustodyEventKindEnum": "specimens.choices.CustodyEventKind",
        "RuleKindEnum": "orders.choices.RuleKind",
        "ComponentKindEnum": "orders.choices.ComponentKind",
        "VerificationMethodEnum": "orders.choices.VerificationMethod",
        "ExposureKindEnum": "orders.choices.ExposureKind",
        "PremedicationClassEnum": "orders.choices.PremedicationClass",
    },
}

# --- Celery ---
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="labflow")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # outcomes live in PostgreSQL
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# After a broker outage: reconnect forever, at most 1 s apart, worker included (labflow/celery.py).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "health_check_interval": 10,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 2}
CELERY_BEAT_SCHEDULER = "labflow.celery:Scheduler"  # a send the broker refused stays due: one log line
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "CELERY_BEAT_SCHEDULE_FILENAME", default=str(embedded.VAR_DIR / "celerybeat-schedule")
)
# Every second: an idle sweep is one index probe per stage, and the deadline reaches the screen within ~1 s
# (docs/architecture.md §3).
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=1.0)
# The heartbeat is stale after three intervals, but never under 30 s: at 1 s a busy worker (concurrency 2) or
# beat's publish retries would otherwise flap /health/ready and the inbox warning.
SWEEP_STALE_SECONDS = env.float("SWEEP_STALE_SECONDS", default=max(3 * SWEEP_INTERVAL_SECONDS, 30.0))

# --- Alerts ---
# Moderate overdue alerts wait this long before anyone sees them and are dropped if the test is done meanwhile.
ALERT_OVERDUE_HOLD = timedelta(minutes=env.float("ALERT_OVERDUE_HOLD_MINUTES", default=30))
# A repeat of a finding within this window of the last one folds into its alert instead of re-opening it.
ALERT_FOLD_WINDOW = timedelta(hours=env.float("ALERT_FOLD_WINDOW_HOURS", default=72))
INBOX_POLL_SECONDS = env.int("INBOX_POLL_SECONDS", default=2)  # the fallback while push is unavailable
ALERT_PUSH = env.bool("ALERT_PUSH", default=True)  # off: every screen polls (alerts/events.py)
# What a critical alert's system notification says: "none" (that one is waiting) or "summary" (the alert's
# summary, which names tests and values, never the patient). Nothing else leaves the page.
ALERT_NOTIFICATION_DETAIL = env.str("ALERT_NOTIFICATION_DETAIL", default="none")

# The inbox warns when the overdue sweep stops beating; monitoring (a later app than alerts) knows.
SWEEP_STALE_FUNCTION = "monitoring.selectors.sweep_is_stale"
# Lab trend charts mark the doses; orders (a later app than results) provides them.
DOSE_DATES_FUNCTION = "orders.selectors.dose_dates_for_patient"
# Called with (results=, now=) inside the transaction that verifies results; later apps act on them and return
# their findings (patient id, alerts.findings.Finding) for the results' alert, or None.
RESULTS_VERIFIED_HOOKS = ["orders.services.doses.on_results_verified", "orders.patterns.on_results_verified"]

# --- ADT feed (patients; docs/interfaces.md) ---
# PID-3 repetition whose assigning authority (CX.4.1) this is carries the MRN; empty: every ADT message is refused.
HL7_MRN_AUTHORITY = env.str("HL7_MRN_AUTHORITY", default="")
# Called with (patient=, now=) inside the transaction that changes a patient's weight (orders flags preparations).
PATIENT_WEIGHT_CHANGED_HOOKS = ["orders.services.preparations.preparations_flag_weight_change"]
# Called with (patient=) before a merge (A40); each returns why the record may not be merged, or None.
PATIENT_MERGE_CHECKS = ["orders.selectors.patient_merge_problem"]

# --- Results out: ORU^R01 to the EHR over MLLP (results/outbox.py, docs/interfaces.md) ---
# No host: messages are written and stay pending (shown on the interface-errors page) until one is configured.
HL7_OUTBOUND_HOST = env.str("HL7_OUTBOUND_HOST", default="")
HL7_OUTBOUND_PORT = env.int("HL7_OUTBOUND_PORT", default=2575)
HL7_OUTBOUND_TIMEOUT_SECONDS = env.float("HL7_OUTBOUND_TIMEOUT_SECONDS", default=10.0)
# Back-off after a timeout or a connection error: base * 2^(attempts - 1), capped.
HL7_OUTBOUND_RETRY_BASE_SECONDS = env.float("HL7_OUTBOUND_RETRY_BASE_SECONDS", default=5.0)
HL7_OUTBOUND_RETRY_MAX_SECONDS = env.float("HL7_OUTBOUND_RETRY_MAX_SECONDS", default=600.0)
HL7_OUTBOUND_INTERVAL_SECONDS = env.float("HL7_OUTBOUND_INTERVAL_SECONDS", default=5.0)
HL7_OUTBOUND_SENDING_APPLICATION = env.str("HL7_OUTBOUND_SENDING_APPLICATION", default="LABFLOW")
HL7_OUTBOUND_SENDING_FACILITY = env.str("HL7_OUTBOUND_SENDING_FACILITY", default="LAB")
HL7_OUTBOUND_RECEIVING_APPLICATION = env.str("HL7_OUTBOUND_RECEIVING_APPLICATION", default="EHR")
HL7_OUTBOUND_RECEIVING_FACILITY = env.str("HL7_OUTBOUND_RECEIVING_FACILITY", default="HOSP")
# PID-3's assigning authority for LabFlow's MRN.
HL7_OUTBOUND_MRN_AUTHORITY = env.str("HL7_OUTBOUND_MRN_AUTHORITY", default="HOSP")

# --- Specimens ---
# A collection covers the tests overdue or due within this many hours; tests due later stay open.
SPECIMEN_COLLECTION_WINDOW_HOURS = env.float("SPECIMEN_COLLECTION_WINDOW_HOURS", default=2.0)
# No result is overdue while its specimen is on its way to the lab, for at most this long (a lost one still is).
SPECIMEN_TRANSIT_LIMIT = timedelta(hours=env.float("SPECIMEN_TRANSIT_LIMIT_HOURS", default=2.0))

# --- Bedside assessments (docs/clinical-sources.md §7) ---
# ASTCT 2019 gives no number for hypotension: systolic below this (mmHg) counts, adults' 90 by default.
ASSESSMENT_HYPOTENSION_SYSTOLIC_MMHG = env.int("ASSESSMENT_HYPOTENSION_SYSTOLIC_MMHG", default=90)

# --- Cell-therapy follow-up (docs/clinical-sources.md §8) ---
# IgG below this (mg/dL) after a cell therapy alerts the oncologists (IVIG); seeds the rule in orders 0009.
IGG_IVIG_THRESHOLD_MG_DL = env.int("IGG_IVIG_THRESHOLD_MG_DL", default=400)

# --- Preparations (site policy; docs/clinical-sources.md) ---
DOSE_ROUNDING_TOLERANCE_PERCENT = env.float("DOSE_ROUNDING_TOLERANCE_PERCENT", default=10.0)
RECALCULATE_WEIGHT_CHANGE_PERCENT = env.float("RECALCULATE_WEIGHT_CHANGE_PERCENT", default=10.0)
PREPARATION_TOLERANCE_PERCENT = env.float("PREPARATION_TOLERANCE_PERCENT", default=5.0)
PREPARATION_DENSITY_G_PER_ML = env.float("PREPARATION_DENSITY_G_PER_ML", default=1.0)
PREPARATION_EXPIRY_INTERVAL_SECONDS = env.float("PREPARATION_EXPIRY_INTERVAL_SECONDS", default=60.0)

# --- Audit ---
PGHISTORY_APPEND_ONLY = True

# --- Operations: logs, health, metrics (docs/architecture.md §5 Operations) ---
# One JSON object per line in production, plain text when debugging; patient data redacted either way.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("LOG_FORMAT must be json or plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"patient_data": {"()": "labflow.logs.RedactPatientData"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "labflow.logs.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["patient_data"]},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # health_check warns with a traceback on every failing probe; the 503 body already names the check.
    "loggers": {"pgserver": {"level": "WARNING"}, "axes": {"level": "WARNING"}, "health_check": {"level": "ERROR"}},
}
# Celery workers and beat log through LOGGING above (JSON, redacted) instead of replacing the root logger.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# /metrics: scrapers send `Authorization: Bearer <METRICS_TOKEN>`; unset, only staff sessions may read it.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Probes inside the container speak plain HTTP to /health/*; everything else still redirects to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^health/"]
PGHISTORY_LEVEL = pgtrigger.Statement  # type: ignore[has-type,unused-ignore]  # one trigger call per statement keeps bulk sweeps cheap

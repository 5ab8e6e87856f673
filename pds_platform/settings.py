"""Settings for PDS Platform, read only from the environment.

With no environment at all the platform runs on an embedded default: SQLite,
a filesystem Celery broker and media under ``var/``. Setting ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``REDIS_URL`` moves it onto PostgreSQL and Redis.
``DJANGO_DEBUG=0`` is production: a missing ``DJANGO_SECRET_KEY`` is an error
and ``manage.py check --deploy`` is clean.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PDS_VAR_DIR") or BASE_DIR / "var")


class StrictEnv(environ.Env):
    """django-environ with a strict boolean: ``env.flag``."""

    TRUE, FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})

    def flag(self, name: str, *, default: bool) -> bool:
        """A boolean variable: true/false, 1/0, yes/no or on/off, in any case; unset gives the default. Anything
        else ("flase", an empty value) refuses to start: django-environ's env.bool reads it as False, so a
        misspelt DJANGO_DEBUG=flase would quietly turn a setting off."""
        raw = self.ENVIRON.get(name)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in self.TRUE:
            return True
        if value in self.FALSE:
            return False
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true/false, 1/0, yes/no or on/off")


env = StrictEnv()
# A .env file is only a convenience for developers; the process environment wins.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.flag("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-dev-key-only-for-the-embedded-demo-0123456789")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (50+ characters) when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with the second factor required and django-otp's device pages guarded.
    "apps.accounts.admin_site.VerifiedAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.regions",
    "apps.traceability",
    "apps.rosters",
    "apps.routing",
    "apps.studies",
    "apps.worklist",
    "apps.api",
    "apps.dashboards",
    "dicom_gateway",  # no models: its run_gateway command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's, saving an unchanged session at most every PDS_SESSION_TOUCH_SECONDS (apps/accounts/sessions.py).
    "apps.accounts.sessions.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # A password-only session reaches nothing but the second-factor steps (needs OTPMiddleware's is_verified).
    "apps.accounts.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.csp.PlatformCSPMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    # Least privilege: the permission matrix (apps.accounts.matrix) before any page's view runs; a refusal is
    # audited (needs the audit context above). The API applies the same matrix in its DRF permission.
    "apps.accounts.authorization.PermissionMatrixMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "pds_platform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

WSGI_APPLICATION = "pds_platform.wsgi.application"

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# PostgreSQL connections are kept (and checked before reuse): opening one per task or request costs a backend fork
# on the server and a handshake here, which on a busy night was a good part of the worker's CPU. SQLite: 0.
_sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0 if _sqlite else 60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if _sqlite:
    # Several processes (web, gateway, worker) share the file: wait for locks
    # instead of failing at once, and use WAL so readers do not block writers.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
# Parallel test sessions (several developers on one machine) keep their own test database.
if env.str("PDS_TEST_DB_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env.str("PDS_TEST_DB_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Test runs only: a fast hasher so fixtures with many accounts load quickly. Ignored in production.
# Read in every configuration, so that a misspelt value is refused there too.
_fast_hasher = env.flag("PDS_TEST_FAST_HASHER", default=False)
if DEBUG and _fast_hasher:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                        "django.contrib.auth.hashers.PBKDF2PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("PDS_MEDIA_ROOT", default=str(VAR_DIR / "media"))

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sessions expire: professionals on shared workstations (PGSSI-S).
SESSION_COOKIE_AGE = env.int("PDS_SESSION_AGE_SECONDS", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Idle timeout: saved when changed, and otherwise at most every PDS_SESSION_TOUCH_SECONDS (a viewer makes hundreds of
# requests a minute: one write each was most of a DICOMweb frame's cost); expiry comes at most that much earlier.
SESSION_SAVE_EVERY_REQUEST = False
PDS_SESSION_TOUCH_SECONDS = env.int("PDS_SESSION_TOUCH_SECONDS", default=60)

# Two-factor login: the embedded demo may skip it; production never does.
PDS_DEMO_SKIP_2FA = env.flag("PDS_DEMO_SKIP_2FA", default=DEBUG) and DEBUG
# `manage.py prepare_platform` (make run, docker compose) loads the demo region: by default in the embedded
# default, in production only when asked (a staging instance tried with the demo logins, TOTP still required).
PDS_LOAD_DEMO = env.flag("PDS_LOAD_DEMO", default=DEBUG)
OTP_TOTP_ISSUER = "PDS Platform"
# A second factor's secret stays with its holder: the device admin (superusers only) never shows a key or QR code
# (its config and QR code pages answer 403), so nobody can clone another person's authenticator.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# Lockout after repeated failed logins (django-axes), per username *and* client address: failing on the on-call
# radiologist's username from elsewhere does not lock her out of her own workstation. Guessing across usernames
# from one address is stopped by the per-address throttle (apps.accounts.throttle): past
# PDS_LOGIN_IP_FAILURE_LIMIT failures within the cool-off, that address's login POSTs get a 429 page. (Hospital
# workstations share one NAT address, so the limit is well above what a site's own typing mistakes reach.)
AXES_FAILURE_LIMIT = env.int("PDS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("PDS_LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"  # answered with status 429
AXES_ENABLED = env.flag("PDS_AXES_ENABLED", default=True)
# (The client address axes and the throttle key on: AXES_CLIENT_IP_CALLABLE, with the audit trail's settings.)
PDS_LOGIN_IP_FAILURE_LIMIT = env.int("PDS_LOGIN_IP_FAILURE_LIMIT", default=30)

# --- Celery -----------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
_broker_fsync = env.flag("PDS_BROKER_FSYNC", default=True)  # read (and checked) whatever the broker
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
REDIS_URL = env.str("REDIS_URL", default="")
if CELERY_BROKER_URL.startswith("filesystem"):
    # The embedded broker: kombu's filesystem transport made safe for several processes (atomic publish,
    # exclusive claim, late ack, redelivery after a killed worker). Its folders, control/ included, live
    # under var/broker; the transport creates them.
    CELERY_BROKER_TRANSPORT = "pds_platform.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "broker_folder": str(BROKER_DIR),
        # fsync each message before it is visible: a published task survives a power cut.
        "fsync": _broker_fsync,
    }
else:
    # Redis: a task not acknowledged within this delay is redelivered (late ack).
    _visibility = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
    # Workers sweep unacknowledged messages back into the queue every few seconds (kombu's default is about
    # every 100 s), so a killed worker's task comes back soon after the visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility,
                                       "unacked_restore_interval": max(1, min(10, _visibility // 4)),
                                       "unacked_restore_throttle": 1}
CELERY_TASK_ALWAYS_EAGER = env.flag("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Worker processes of `run_platform` (the Docker image's worker says 4 on its command line). A routing task is
# mostly waiting for PostgreSQL (about 16 queries): on a busy night, with the gateway taking most of 2 cores, two
# processes left the routing messages queued for 10 s and more (benchmarks/load.py); four overlap those waits and
# get a fairer share of the CPU. SQLite has a single writer: more processes there only wait for its lock.
CELERY_WORKER_CONCURRENCY = env.int(
    "PDS_WORKER_CONCURRENCY", default=2 if _sqlite else 4)
# What a busy night must not keep waiting goes first: on Redis, a message's priority picks its list (kombu's
# priority_steps 0, 3, 6, 9; 0 is consumed first). The routing decision first (it picks whom to alert), then the
# alerts (an email and an SMS per assignment), then webhooks, sealing and beat's sweeps. A priority is a routing
# option, so it holds for send_task by name too. The embedded broker has one list and ignores it.
# Routing also has a queue of its own: a worker started without -Q consumes both queues (the Docker image's);
# `run_platform` on Redis gives the routing queue its own small worker (PDS_ROUTER_CONCURRENCY), so a decision
# never waits for a worker process busy with an alert, a webhook or a sweep. Alerts stay on the default queue,
# first in it (priority 3): measured on the routing queue, behind a steady flow of decisions (priority 0), they
# waited 42 s (p50) under load instead of 0.4 s.
CELERY_TASK_DEFAULT_QUEUE = "celery"
ROUTING_QUEUE = "routing"
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(ROUTING_QUEUE))
CELERY_TASK_ROUTES = {
    "routing.route_case": {"queue": ROUTING_QUEUE, "priority": 0},
    "routing.deliver_notification": {"priority": 3},
    "*": {"priority": 6},
}
PDS_ROUTER_CONCURRENCY = env.int("PDS_ROUTER_CONCURRENCY", default=8)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- DICOM gateway ----------------------------------------------------------
# The OHIF viewer release installed by `make install` (scripts/install_ohif.py), served under /ohif/.
PDS_OHIF_ROOT = env.path("PDS_OHIF_ROOT", default=str(BASE_DIR / "var" / "ohif"))
# The DICOM JSON of the studies a radiologist's worklist or case page shows, prepared by a worker for the viewer
# (apps.worklist.dicom_json), in the cache the web processes share (Redis only): about 1 ms of a worker per image.
PDS_DICOMWEB_PREPARE_METADATA = env.flag("PDS_DICOMWEB_PREPARE_METADATA", default=True)
# STOW-RS: the largest request body accepted (413 past it); the body is copied to disk, not held in memory.
PDS_STOW_MAX_BYTES = env.int("PDS_STOW_MAX_BYTES", default=512 * 1024 * 1024)
PDS_DICOM_AET = env.str("PDS_DICOM_AET", default="PDS_GATEWAY")
PDS_DICOM_HOST = env.str("PDS_DICOM_HOST", default="127.0.0.1")
PDS_DICOM_PORT = env.int("PDS_DICOM_PORT", default=11112)
PDS_DICOM_TLS_PORT = env.int("PDS_DICOM_TLS_PORT", default=0)
PDS_DICOM_TLS_CERT = env.str("PDS_DICOM_TLS_CERT", default="")
PDS_DICOM_TLS_KEY = env.str("PDS_DICOM_TLS_KEY", default="")
PDS_DICOM_TLS_CA = env.str("PDS_DICOM_TLS_CA", default="")
PDS_DICOM_STORAGE_ROOT = env.path("PDS_DICOM_STORAGE_ROOT", default=str(VAR_DIR / "dicom"))
PDS_DICOM_QUIET_SECONDS = env.float("PDS_DICOM_QUIET_SECONDS", default=5.0)
PDS_DICOM_MIN_FREE_MB = env.int("PDS_DICOM_MIN_FREE_MB", default=1024)
PDS_DICOM_MAX_ASSOCIATIONS = env.int("PDS_DICOM_MAX_ASSOCIATIONS", default=16)
PDS_DICOM_MAX_PDU = env.int("PDS_DICOM_MAX_PDU", default=262144)
# Gateway processes sharing the port. Python runs one association at a time per process (one interpreter lock):
# two associations in one process cost 1.4 ms more CPU per image than in two (measured, 4 senders on 2 cores), so
# by default there are two processes per core, each preferring to be the one idle when a connection arrives (SQLite,
# one writer at a time: two).
PDS_DICOM_WORKERS = env.int("PDS_DICOM_WORKERS", default=2 if _sqlite else max(2, 2 * (os.cpu_count() or 1)))
# Priors from the site PACS (apps.worklist.priors): seconds to connect and for each C-FIND answer, and for a C-MOVE
# (answered once all its images are sent); minutes a requested study may take to arrive before it is marked failed.
PDS_PRIORS_TIMEOUT = env.float("PDS_PRIORS_TIMEOUT", default=10.0)
PDS_PRIORS_MOVE_TIMEOUT = env.float("PDS_PRIORS_MOVE_TIMEOUT", default=600.0)
PDS_PRIORS_ARRIVAL_MINUTES = env.int("PDS_PRIORS_ARRIVAL_MINUTES", default=30)
# Niceness of the processes that receive images (0-19): when the machine is short of CPU, routing decisions, alerts
# and pages go first and images wait (a sender waits for its response; nothing is refused for it).
PDS_DICOM_NICE = env.int("PDS_DICOM_NICE", default=19)
# An image's row is committed while its file is flushed (both before the image is acknowledged); a row older than
# this whose file is not on the disk was left by a gateway process killed between the two, and is removed.
PDS_DICOM_UNSTORED_GRACE_SECONDS = env.float("PDS_DICOM_UNSTORED_GRACE_SECONDS", default=10.0)

# --- Routing and notification ----------------------------------------------
PDS_SMS_BACKEND = env.str("PDS_SMS_BACKEND", default="apps.routing.notifiers.ConsoleSmsBackend")
PDS_SMS_FILE = env.str("PDS_SMS_FILE", default=str(VAR_DIR / "sms.log"))
PDS_SITE_URL = env.str("PDS_SITE_URL", default="http://127.0.0.1:8000")
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.flag("DJANGO_EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="pds-platform@localhost")

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Every error status documented on every operation (apps.api.openapi).
    "DEFAULT_SCHEMA_CLASS": "apps.api.openapi.ApiAutoSchema",
    # JSON only, in and out: bodies parsed with a nesting limit (apps.core.parsers), no browsable API.
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    # A web session counts only with its second factor verified (API keys are unaffected).
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated",
                                   "apps.accounts.permissions.SessionSecondFactorVerified"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.api.pagination.ApiPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.problems.api_exception_handler",
}
# Input bounds of the API (docs/security.md, "Input validation and API contract"): a page holds at most
# PDS_API_MAX_PAGE_SIZE results (a larger limit is a 400), a JSON body nests at most PDS_API_MAX_JSON_DEPTH
# levels (ours nest 2), and a body (any request, web forms too, files apart) is at most 1 MiB (413 on the API).
PDS_API_MAX_PAGE_SIZE = 200
PDS_API_MAX_JSON_DEPTH = 32
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
SPECTACULAR_SETTINGS = {
    "TITLE": "PDS Platform API",
    "DESCRIPTION": "Regional teleradiology on-call platform: RIS/PACS integration API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI / Redoc assets served from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema's modality enum is the catalogue in the database, so generating it needs a migrated database;
    # `check --deploy` must not (it runs before migrations, and at image build). The schema is checked by the
    # test suite instead (tests/api schema tests and schemathesis against a live server).
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
    # The schema and its viewers answer as the permission matrix says (public, GET only), like every API view.
    "SERVE_PERMISSIONS": ["apps.api.permissions.MatrixPermission"],
}
# RIS API keys are throttled per key; with REDIS_URL the counters are shared by all web processes,
# otherwise each process counts on its own (local memory).
PDS_API_THROTTLE_RATE = env.str("PDS_API_THROTTLE_RATE", default="600/min")
# DICOMweb's own rate per key or user (apps.api.throttles.DicomWebRateThrottle): a series is one request per slice.
PDS_DICOMWEB_THROTTLE_RATE = env.str("PDS_DICOMWEB_THROTTLE_RATE", default="12000/min")
CACHES: dict[str, dict[str, Any]] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES["api_throttle"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                              "KEY_PREFIX": "pds-api-throttle"}
# DICOMweb instance metadata (apps.api.dicomweb.metadata_document): shared by the web workers on Redis; in one
# process's memory otherwise, room for a few thousand slices (locmem keeps 300 entries by default).
CACHES["dicomweb_metadata"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
     "KEY_PREFIX": "pds-dicomweb-meta"} if REDIS_URL else
    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "dicomweb-metadata",
     "OPTIONS": {"MAX_ENTRIES": 20000}})
# Webhook outbox: retry with exponential backoff (base * 2^attempt, capped), incident after N failures,
# abandoned (unblocking later events of the same request) only after PDS_WEBHOOK_GIVE_UP_HOURS.
PDS_WEBHOOK_TIMEOUT_SECONDS = env.float("PDS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
PDS_WEBHOOK_BACKOFF_SECONDS = env.float("PDS_WEBHOOK_BACKOFF_SECONDS", default=15.0)
PDS_WEBHOOK_BACKOFF_MAX_SECONDS = env.float("PDS_WEBHOOK_BACKOFF_MAX_SECONDS", default=600.0)
PDS_WEBHOOK_INCIDENT_AFTER = env.int("PDS_WEBHOOK_INCIDENT_AFTER", default=5)
PDS_WEBHOOK_GIVE_UP_HOURS = env.float("PDS_WEBHOOK_GIVE_UP_HOURS", default=72.0)
PDS_WEBHOOK_SWEEP_SECONDS = env.float("PDS_WEBHOOK_SWEEP_SECONDS", default=30.0)
# Webhook targets (SSRF, apps/api/egress.py): https only and never a loopback, private, link-local or cloud
# metadata address, checked on the addresses resolved at each delivery. Tests and on-premises receivers may
# explicitly allow plain http:// and loopback/private addresses; metadata and link-local stay refused.
PDS_WEBHOOK_ALLOW_HTTP = env.flag("PDS_WEBHOOK_ALLOW_HTTP", default=False)
PDS_WEBHOOK_ALLOW_PRIVATE = env.flag("PDS_WEBHOOK_ALLOW_PRIVATE", default=False)
# CA bundle (PEM file) that receivers' certificates are verified against; empty: the bundle requests ships.
PDS_WEBHOOK_CA_BUNDLE = env.str("PDS_WEBHOOK_CA_BUNDLE", default="")

# --- Audit trail and client addresses (apps/audit, apps/core/net.py) --------
# Each audit entry carries an HMAC-SHA256 of its own content under this key, and the sealer chains them under
# it: without the key nobody (the database role included) can alter or recompute an entry unnoticed. It is
# a secret like DJANGO_SECRET_KEY and kept apart from the database credentials; production requires it.
if DEBUG:
    PDS_AUDIT_KEY = env.str("PDS_AUDIT_KEY", default="insecure-dev-audit-key-only-for-the-embedded-demo")
else:
    PDS_AUDIT_KEY = env.str("PDS_AUDIT_KEY", default="")
    if len(PDS_AUDIT_KEY) < 32:
        raise ImproperlyConfigured("PDS_AUDIT_KEY must be set (32+ characters) when DJANGO_DEBUG=0")
# Append-only file of the sealer's checkpoints (count + head of the sealed chain), outside the database: in
# production an append-only/WORM mount or a file shipped to syslog/SIEM (docs/security.md).
PDS_AUDIT_CHECKPOINT_FILE = env.path("PDS_AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit-checkpoints.log"))
# The sealer (beat task audit.seal) runs this often and seals entries older than the settle delay (ids are
# not committed in id order on PostgreSQL); it looks back this far behind its last seal for late commits.
PDS_AUDIT_SEAL_SECONDS = env.float("PDS_AUDIT_SEAL_SECONDS", default=10.0)
PDS_AUDIT_SEAL_SETTLE_SECONDS = env.float("PDS_AUDIT_SEAL_SETTLE_SECONDS", default=5.0)
PDS_AUDIT_SEAL_LOOKBACK_SECONDS = env.float("PDS_AUDIT_SEAL_LOOKBACK_SECONDS", default=3600.0)
# /healthz degrades (and names the check) when the sealer lags more than this (it normally lags by
# PDS_AUDIT_SEAL_SECONDS + PDS_AUDIT_SEAL_SETTLE_SECONDS, ~15 s: 120 s is several missed runs) ...
PDS_HEALTH_SEAL_LAG_SECONDS = env.float("PDS_HEALTH_SEAL_LAG_SECONDS", default=120.0)
# ... or when more than PDS_HEALTH_BACKLOG_MAX cases wait for assignment longer than PDS_HEALTH_BACKLOG_SECONDS
# (routing is immediate and the reconciler retries every 30 s: a case unassigned for 5 min is a patient nobody
# was told about, so by default one is already too many).
PDS_HEALTH_BACKLOG_SECONDS = env.float("PDS_HEALTH_BACKLOG_SECONDS", default=300.0)
PDS_HEALTH_BACKLOG_MAX = env.int("PDS_HEALTH_BACKLOG_MAX", default=0)
# Our reverse proxies (CIDR networks): X-Forwarded-For is believed only from them. Empty: never believed.
PDS_TRUSTED_PROXIES = env.list("PDS_TRUSTED_PROXIES", default=[])
try:
    import ipaddress as _ipaddress

    for _cidr in PDS_TRUSTED_PROXIES:
        _ipaddress.ip_network(_cidr, strict=False)
except ValueError as _exc:
    raise ImproperlyConfigured(f"PDS_TRUSTED_PROXIES: {_exc}") from _exc
# django-axes keys its lockouts on the same address the audit trail records.
AXES_CLIENT_IP_CALLABLE = "apps.core.net.client_ip"

# --- Security (production) --------------------------------------------------
_ssl_redirect = env.flag("DJANGO_SECURE_SSL_REDIRECT", default=True)  # checked in development too
if not DEBUG:
    SECURE_SSL_REDIRECT = _ssl_redirect
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp, apps.core.csp): the platform's pages load scripts, styles, images and
# fonts from their own origin only, with no inline script or style; no plugin, no framing, forms post only here.
# The API documentation pages get a narrow relaxation (apps.core.csp).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # data: for the empty favicon of base.html; images are otherwise served by the platform.
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SESSION_COOKIE_HTTPONLY = True

_LOG_LEVEL = env.str("PDS_LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"health_probe": {"()": "apps.core.logs.HealthProbeFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"},
                # A 503 from /healthz while processes start is an answer, not an error of the platform.
                "django.request": {"filters": ["health_probe"]},
                # The worker's "Task … received / succeeded" lines, several per second for beat's housekeeping
                # tasks, bury what a person reads; failures and retries (WARNING, ERROR) are still logged, and
                # the services log what they decided. PDS_LOG_LEVEL=DEBUG shows them again.
                "celery.app.trace": {"level": "WARNING" if _LOG_LEVEL != "DEBUG" else "DEBUG"},
                "celery.worker.strategy": {"level": "WARNING" if _LOG_LEVEL != "DEBUG" else "DEBUG"}},
}

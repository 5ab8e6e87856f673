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

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PDS_VAR_DIR") or BASE_DIR / "var")

env = environ.Env()
# A .env file is only a convenience for developers; the process environment wins.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=True)

if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-dev-key-only-for-the-embedded-demo-0123456789")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (50+ characters) when DJANGO_DEBUG=0")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
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

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
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
if DEBUG and env.bool("PDS_TEST_FAST_HASHER", default=False):
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
SESSION_SAVE_EVERY_REQUEST = True

# Two-factor login: the embedded demo may skip it; production never does.
PDS_DEMO_SKIP_2FA = env.bool("PDS_DEMO_SKIP_2FA", default=DEBUG) and DEBUG
OTP_TOTP_ISSUER = "PDS Platform"

# Lockout after repeated failed logins (django-axes).
AXES_FAILURE_LIMIT = env.int("PDS_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("PDS_LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env.bool("PDS_AXES_ENABLED", default=True)
# Lockout is per username: hospital workstations share one NAT address, so locking by IP would lock a whole site out.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# --- Celery -----------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
REDIS_URL = env.str("REDIS_URL", default="")
if CELERY_BROKER_URL.startswith("filesystem"):
    for sub in ("in", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    # Redis: a task not acknowledged within this delay is redelivered (late ack).
    _visibility = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
    # Workers sweep unacknowledged messages back into the queue every few seconds (kombu's default is about
    # every 100 s), so a killed worker's task comes back soon after the visibility timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility,
                                       "unacked_restore_interval": max(1, min(10, _visibility // 4)),
                                       "unacked_restore_throttle": 1}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- DICOM gateway ----------------------------------------------------------
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
PDS_DICOM_WORKERS = env.int("PDS_DICOM_WORKERS", default=2)

# --- Routing and notification ----------------------------------------------
PDS_SMS_BACKEND = env.str("PDS_SMS_BACKEND", default="apps.routing.notifiers.ConsoleSmsBackend")
PDS_SMS_FILE = env.str("PDS_SMS_FILE", default=str(VAR_DIR / "sms.log"))
PDS_SITE_URL = env.str("PDS_SITE_URL", default="http://127.0.0.1:8000")
EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="pds-platform@localhost")

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
}
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
}
# RIS API keys are throttled per key; with REDIS_URL the counters are shared by all web processes,
# otherwise each process counts on its own (local memory).
PDS_API_THROTTLE_RATE = env.str("PDS_API_THROTTLE_RATE", default="600/min")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES["api_throttle"] = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                              "KEY_PREFIX": "pds-api-throttle"}
# Webhook outbox: retry with exponential backoff (base * 2^attempt, capped), incident after N failures,
# abandoned (unblocking later events of the same request) only after PDS_WEBHOOK_GIVE_UP_HOURS.
PDS_WEBHOOK_TIMEOUT_SECONDS = env.float("PDS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
PDS_WEBHOOK_BACKOFF_SECONDS = env.float("PDS_WEBHOOK_BACKOFF_SECONDS", default=15.0)
PDS_WEBHOOK_BACKOFF_MAX_SECONDS = env.float("PDS_WEBHOOK_BACKOFF_MAX_SECONDS", default=600.0)
PDS_WEBHOOK_INCIDENT_AFTER = env.int("PDS_WEBHOOK_INCIDENT_AFTER", default=5)
PDS_WEBHOOK_GIVE_UP_HOURS = env.float("PDS_WEBHOOK_GIVE_UP_HOURS", default=72.0)
PDS_WEBHOOK_SWEEP_SECONDS = env.float("PDS_WEBHOOK_SWEEP_SECONDS", default=30.0)

# --- Security (production) --------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("PDS_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

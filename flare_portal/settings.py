"""FLARE settings: one module, every value from the environment with a working local default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return default if raw in (None, "") else float(raw)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DEBUG = env_bool("FLARE_DEBUG", False)
SECRET_KEY = env_str("FLARE_SECRET_KEY", "dev-only-insecure-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env_list("FLARE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("FLARE_CSRF_TRUSTED_ORIGINS", "")
# Under pytest (or FLARE_TESTING=true) a run gets its own Celery queue and test database, so
# parallel runs and a demo running next to them never share work; children inherit both names.
# Behind a TLS-terminating ingress: trust its X-Forwarded-Proto header (opt-in).
if env_bool("FLARE_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

TESTING = env_bool("FLARE_TESTING", "pytest" in sys.modules)
if TESTING:
    os.environ.setdefault("FLARE_TESTING", "true")
    os.environ.setdefault("FLARE_CELERY_QUEUE", f"flare-test-{os.getpid()}")
    os.environ.setdefault("FLARE_API_RATE", "100000/min")

SHARED_APPS = [
    # `tenants` first: its `create_tenant` command (tenant + first admin) must win over the one
    # django-tenants ships (Django takes a command from the earliest app that defines it).
    "tenants",
    "django_tenants",
    "providers",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "channels",
]
TENANT_APPS = [
    "intents",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
# One hostname for every tenant: the credential picks the schema (tenants.middleware).
SHOW_PUBLIC_IF_NO_TENANT_FOUND = True

MIDDLEWARE = [
    "flare_portal.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.CredentialTenantMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "flare_portal.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "flare_portal.asgi.application"

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

# Each test run gets its own database (parallel runs must not collide); subprocesses of the run
# (live servers, workers) inherit the name through the environment.
if not os.environ.get("FLARE_TEST_DB_NAME"):
    os.environ["FLARE_TEST_DB_NAME"] = f"test_flare_{os.getpid()}"

DATABASES = {
    "default": {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": env_str("FLARE_DB_NAME", "flare"),
        "USER": env_str("FLARE_DB_USER", "postgres"),
        "PASSWORD": env_str("FLARE_DB_PASSWORD", ""),
        "HOST": env_str("FLARE_DB_HOST", "127.0.0.1"),
        "PORT": env_int("FLARE_DB_PORT", 5432),
        "CONN_MAX_AGE": env_int("FLARE_DB_CONN_MAX_AGE", 0),
        "TEST": {"NAME": env_str("FLARE_TEST_DB_NAME", "test_flare")},
    }
}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("FLARE_REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_str("FLARE_CACHE_URL", "redis://127.0.0.1:6379/2"),
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [env_str("FLARE_CHANNELS_URL", "redis://127.0.0.1:6379/3")]},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Manifest storage needs collectstatic; tests and the dev server use plain storage (STACK.md).
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env_bool("FLARE_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True

# Request bodies: the API refuses anything larger with 413 in the envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("FLARE_MAX_BODY_BYTES", 1_048_576)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["flare_portal.api.permissions.HasTokenPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["flare_portal.api.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "flare_portal.api.pagination.FlarePagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "flare_portal.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["flare_portal.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("FLARE_API_RATE", "600/min")},
    "UNAUTHENTICATED_USER": None,
    # `?format=` belongs to our endpoints (GET /intents/{id}/solver?format=yaml), not to DRF.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "FLARE API",
    "DESCRIPTION": "Federated Liquid Resources Exchange: GPU intents across a FLUIDOS federation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "PREPROCESSING_HOOKS": ["flare_portal.api.routing.drop_slashed_duplicates"],
    "ENUM_NAME_OVERRIDES": {
        "IntentStatusEnum": ["pending", "queued", "running", "completed", "failed", "cancelling", "cancelled"],
        "TokenStatusEnum": ["active", "expired", "revoked"],
        "ConditionStatusEnum": ["True", "False", "Unknown"],
        "SubmitStatusEnum": ["pending", "queued"],
    },
}

CELERY_BROKER_URL = env_str("FLARE_CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("FLARE_CELERY_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("FLARE_CELERY_QUEUE", "flare")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
FLARE_REDRIVE_SECONDS = env_float("FLARE_REDRIVE_SECONDS", 15.0)

# Federation backend: "simulated" (embedded default) or "kubernetes".
FLARE_FEDERATION = env_str("FLARE_FEDERATION", "simulated")
FLARE_SIM_STEP_DELAY = env_float("FLARE_SIM_STEP_DELAY", 0.0)   # seconds per phase (demo: a few)
FLARE_SIM_FAULT_RATE = env_float("FLARE_SIM_FAULT_RATE", 0.0)
FLARE_SIM_SEED = env_int("FLARE_SIM_SEED", 42)
FLARE_SIM_BATCH_SECONDS = env_float("FLARE_SIM_BATCH_SECONDS", 60.0)
FLARE_KUBECONFIG = env_str("FLARE_KUBECONFIG", "")
FLARE_KUBE_CONTEXT = env_str("FLARE_KUBE_CONTEXT", "")
FLARE_FLUIDOS_NAMESPACE = env_str("FLARE_FLUIDOS_NAMESPACE", "fluidos")
FLARE_KUBE_RETRIES = env_int("FLARE_KUBE_RETRIES", 4)           # per API call, on 409/429/5xx/timeouts
FLARE_KUBE_BACKOFF = env_float("FLARE_KUBE_BACKOFF", 0.2)       # first backoff, doubled per retry
FLARE_KUBE_MAX_BACKOFF = env_float("FLARE_KUBE_MAX_BACKOFF", 5.0)
FLARE_KUBE_TIMEOUT = env_float("FLARE_KUBE_TIMEOUT", 30.0)      # seconds per API request

# Reconciliation: how often a waiting step polls, how often a running workload is observed, how
# many fresh attempts a failed placement gets, and FLARE's own per-step timeouts (FLUIDOS.md §6.10).
FLARE_POLL_SECONDS = env_float("FLARE_POLL_SECONDS", 2.0)
FLARE_RUNNING_POLL_SECONDS = env_float("FLARE_RUNNING_POLL_SECONDS", 10.0)
FLARE_MAX_RETRIES = env_int("FLARE_MAX_RETRIES", 3)
FLARE_STEP_TIMEOUTS = {
    "Discovering": env_float("FLARE_TIMEOUT_DISCOVERING", 150.0),
    "Reserving": env_float("FLARE_TIMEOUT_RESERVING", 120.0),
    "Peering": env_float("FLARE_TIMEOUT_PEERING", 300.0),
    "Offloading": env_float("FLARE_TIMEOUT_OFFLOADING", 120.0),
    "Deploying": env_float("FLARE_TIMEOUT_DEPLOYING", 300.0),
}
FLARE_INVENTORY_REFRESH_SECONDS = env_float("FLARE_INVENTORY_REFRESH_SECONDS", 60.0)

# Token bookkeeping: last_used is written at most this often per token.
FLARE_TOKEN_LAST_USED_INTERVAL = env_int("FLARE_TOKEN_LAST_USED_INTERVAL", 60)
FLARE_TOKEN_DEFAULT_EXPIRY = env_str("FLARE_TOKEN_DEFAULT_EXPIRY", "90d")

# Webhooks: private/loopback targets are refused unless explicitly allowed (development).
FLARE_WEBHOOKS_ALLOW_PRIVATE = env_bool("FLARE_WEBHOOKS_ALLOW_PRIVATE", False)
# Open websockets re-check their token or session at most this often (revocation closes them).
FLARE_WS_RECHECK_SECONDS = env_float("FLARE_WS_RECHECK_SECONDS", 30.0)
FLARE_WEBHOOK_MAX_ATTEMPTS = env_int("FLARE_WEBHOOK_MAX_ATTEMPTS", 5)
FLARE_WEBHOOK_BACKOFF_SECONDS = env_float("FLARE_WEBHOOK_BACKOFF_SECONDS", 10.0)   # first retry delay
FLARE_WEBHOOK_BACKOFF_FACTOR = env_float("FLARE_WEBHOOK_BACKOFF_FACTOR", 3.0)     # each retry waits ×factor
FLARE_WEBHOOK_TIMEOUT = env_float("FLARE_WEBHOOK_TIMEOUT", 10.0)                  # seconds per delivery

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "flare_portal.middleware.RequestContextLogFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s schema=%(schema)s] %(message)s"
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request"]}
    },
    "root": {"handlers": ["console"], "level": env_str("FLARE_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}

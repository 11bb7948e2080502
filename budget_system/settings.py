"""Settings for the Budget Management System.

One module, read from environment variables. Every variable has a safe local default so that a
fresh clone runs on SQLite with no configuration; production values come only from the
environment (see README, "Configuration").
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

# Lets django-stubs' generic classes (QuerySet[Campaign], ...) be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state (SQLite file, broker fallback folders, admin login) lives here, never in git.
VAR_DIR = Path(os.environ.get("BUDGET_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# The local default key is only usable with DEBUG on; production must set SECRET_KEY.
_LOCAL_SECRET_KEY = "local-development-only-not-secret"
SECRET_KEY = env_str("SECRET_KEY", _LOCAL_SECRET_KEY)
if not DEBUG and SECRET_KEY == _LOCAL_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    # The ingestion API's docs page (/api/v1/docs) then serves Swagger UI from static files, not a CDN.
    "ninja",
    "apps.budget",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "budget_system.urls"
WSGI_APPLICATION = "budget_system.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def database_from_url(url: str) -> dict[str, Any]:
    """The default database from DATABASE_URL, tuned per engine."""
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Several writers (web, worker, beat) share the file: WAL lets readers run beside a
        # writer, IMMEDIATE takes the write lock at BEGIN (a deferred transaction that upgrades
        # later fails with "database is locked"), and the timeout makes writers queue.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif config["ENGINE"] == "django.db.backends.postgresql":
        config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# All budget periods are UTC days and months (SPEC, "Time and money").
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# Production hardening, on whenever DEBUG is off (manage.py check --deploy stays clean).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = 0 if DEBUG else int(env_str("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Celery: the app reads every CELERY_* setting below (budget_system/celery.py).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The no-server fallback that bin/run announces when Redis does not answer.
    _broker_folder = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        "data_folder_in": str(_broker_folder),
        "data_folder_out": str(_broker_folder),
        "processed_folder": str(VAR_DIR / "broker-processed"),
        # Kombu's default is ./control, relative to wherever a process starts.
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
    }
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Task modules beyond the autodiscovered apps.budget.tasks: the webhook sender.
CELERY_IMPORTS = ["apps.budget.webhook_tasks"]
# The jobs acknowledge their message only when done (acks_late): a worker holds one job at a time
# instead of reserving others that a free worker could run.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Beat answers `celery inspect ping` (its health check) as celerybeat@<host>.
CELERY_BEAT_ENABLE_REMOTE_CONTROL = True
# The periodic jobs (SPEC, "Periodic jobs"), all in UTC. Declared once here: beat's DatabaseScheduler
# and `manage.py setup_schedules` upsert these entries by name into django-celery-beat's tables,
# where the admin shows them. The frequent jobs expire after about 1.5 intervals, so a backlog
# (workers down) runs them once when it clears, not once per missed slot; `expire_seconds` is the
# option name DatabaseScheduler stores.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "reset_daily_budgets": {
        "task": "apps.budget.tasks.reset_daily_budgets",
        "schedule": crontab(minute=0, hour=0),  # 00:00 UTC every day
    },
    "reset_monthly_budgets": {
        "task": "apps.budget.tasks.reset_monthly_budgets",
        "schedule": crontab(minute=0, hour=0, day_of_month=1),  # 00:00 UTC on the 1st of each month
    },
    "enforce_dayparting": {
        "task": "apps.budget.tasks.enforce_dayparting",
        "schedule": crontab(minute=0),  # every hour at :00
        "options": {"expire_seconds": 90 * 60},
    },
    "check_campaign_budgets": {
        "task": "apps.budget.tasks.check_campaign_budgets",
        "schedule": crontab(minute="*/5"),  # every 5 minutes: :00, :05, ... :55
        "options": {"expire_seconds": 450},
    },
    # Not a budget job: sends webhook deliveries still pending (the broker was down when their
    # change committed, or a retry is due), so an event never waits for the next status change.
    "send_webhooks": {
        "task": "apps.budget.webhook_tasks.send_webhooks",
        "schedule": crontab(minute="*"),  # every minute
        "options": {"expire_seconds": 90},
    },
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "apps.budget": {"handlers": ["console"], "level": env_str("BUDGET_LOG_LEVEL", "INFO")},
    },
}

"""EvalHub settings. Every environment read goes through ``evalhub.core.env``."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from datetime import date, timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from evalhub.core.env import env_bool, env_date, env_int, env_list, env_size, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVALHUB_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
# Private: the secret key, the SQLite database, queued work. Custom code evaluators run as
# another user (evalhub/evaluators/sandbox/run.py), which must not read any of it.
if VAR_DIR.stat().st_uid == os.geteuid():
    VAR_DIR.chmod(0o700)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        return configured
    # Development: generate once and keep it under var/ so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "ninja",  # the API docs' Swagger UI from its own static files, not a CDN
    "axes",  # login attempts limited per account and per address
    "evalhub",  # the project: settings, URLs, API root, Celery app, checks
    "evalhub.identity",
    "tracing",
    "annotations",
    "evalhub.retention",
    "evalhub.preferences",
    "evalhub.monitors",
    "evalhub.experiments",
    "evalhub.calibration",
    "evalhub.alignment",
    "evalhub.budgets",
    "evalhub.shadow",
    "annotations.queues",
    "annotations.datasets",
    "evalhub.providers",
    "evalhub.evaluators",
    "evalhub.tasks",
    "evalhub.trends",
]

MIDDLEWARE = [
    # First: a database failure anywhere below answers 503 + Retry-After on the API routes.
    "evalhub.core.database.DatabaseFailureMiddleware",
    # Every answer of the Phoenix-compatible API says the Phoenix version it serves.
    "evalhub.core.phoenix_version.PhoenixVersionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "evalhub.identity.auth.AccessMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "evalhub.preferences.middleware.TimeZoneMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "evalhub.urls"
WSGI_APPLICATION = "evalhub.wsgi.application"

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
                "evalhub.site.navigation.navigation",
                "evalhub.preferences.middleware.time_zone_context",
            ],
        },
    },
]

# Database: DATABASE_URL (PostgreSQL in production), else SQLite in WAL mode under var/.
_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0)
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
        # Bind parameters on the server: client-side quoting of large batches was a large
        # share of ingest time.
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = True
        # EvalHub's queries are short index reads and batched writes: PostgreSQL's JIT compiles
        # them when its cost estimates cross jit_above_cost (at millions of spans they do) and
        # the compiling costs more than the query (docs/benchmarks.md, 10M spans: 0.6 s of a
        # 1.1 s retention batch). EVALHUB_PG_JIT=true keeps the server's setting.
        if not env_bool("EVALHUB_PG_JIT", False) and "jit" not in options.get("options", ""):
            options["options"] = f"{options.get('options', '')} -c jit=off".strip()
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "evalhub.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out accounts and addresses first
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request without it
# Serve straight from the apps' static folders too, so pages are styled even before (or
# without) collectstatic — in tests and a fresh checkout. Production runs collectstatic.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Request bodies: OTLP batches can be large; the ingest view enforces its own limit.
EVALHUB_MAX_BODY_SIZE = env_size("EVALHUB_MAX_BODY_SIZE", 32 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = EVALHUB_MAX_BODY_SIZE
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000
# OTLP/gRPC receiver (manage.py grpc_ingest, started by ./dev run): where it listens, how many
# requests it serves at once, and how many ingest processes decode and store the spans.
EVALHUB_GRPC_HOST = env_str("EVALHUB_GRPC_HOST", "127.0.0.1") or "127.0.0.1"
EVALHUB_GRPC_PORT = env_int("EVALHUB_GRPC_PORT", 4317, minimum=0)
EVALHUB_GRPC_THREADS = env_int("EVALHUB_GRPC_THREADS", 8, minimum=1)
EVALHUB_GRPC_PROCESSES = env_int("EVALHUB_GRPC_PROCESSES", 2, minimum=0)
# Spans whose times fall outside [EVALHUB_SPAN_EARLIEST, now + EVALHUB_SPAN_MAX_FUTURE_SECONDS]
# are refused (OTLP: partial success), like the rest of a batch's invalid spans.
EVALHUB_SPAN_EARLIEST = env_date("EVALHUB_SPAN_EARLIEST", date(2000, 1, 1))
EVALHUB_SPAN_MAX_FUTURE_SECONDS = env_int("EVALHUB_SPAN_MAX_FUTURE_SECONDS", 86_400, minimum=0)

# Celery: CELERY_BROKER_URL, else REDIS_URL, else the filesystem transport under var/.
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    _broker_dir = VAR_DIR / "celery-broker"
    for sub in ("in", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Results travel back only for the calls a web process waits on (custom code, evalhub.evaluators.sandbox.dispatch):
# CELERY_RESULT_BACKEND, else the Redis of REDIS_URL / a Redis broker, else files under var/.
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
if not CELERY_RESULT_BACKEND:
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        CELERY_RESULT_BACKEND = CELERY_BROKER_URL
    else:
        (VAR_DIR / "celery-results").mkdir(exist_ok=True)
        CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery-results'}"  # a path, not a URI
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
# Online evaluation tasks (evalhub.tasks).
EVALHUB_TASKS_TICK_SECONDS = env_int("EVALHUB_TASKS_TICK_SECONDS", 5, minimum=1)
EVALHUB_RUNS_SWEEP_SECONDS = env_int("EVALHUB_RUNS_SWEEP_SECONDS", 30, minimum=1)
EVALHUB_RUN_LEASE_SECONDS = env_int("EVALHUB_RUN_LEASE_SECONDS", 60, minimum=2)
EVALHUB_RUN_SLICE_SECONDS = env_int("EVALHUB_RUN_SLICE_SECONDS", 60, minimum=1)
EVALHUB_TASK_CONCURRENCY = env_int("EVALHUB_TASK_CONCURRENCY", 16, minimum=1)
# A run's items are cut into shards worked by as many workers at once as are free, up to this
# many shards of one run (the other workers stay for other runs); 0: shards sized by the run.
EVALHUB_RUN_MAX_SHARDS = env_int("EVALHUB_RUN_MAX_SHARDS", 8, minimum=1)
EVALHUB_RUN_SHARD_ITEMS = env_int("EVALHUB_RUN_SHARD_ITEMS", 0, minimum=0)
# Retention (evalhub.retention): traces older than this many days are deleted, in projects
# without a limit of their own; 0 keeps them forever. The pass runs on beat this often.
EVALHUB_RETENTION_DAYS = env_int("EVALHUB_RETENTION_DAYS", 0, minimum=0)
EVALHUB_RETENTION_SWEEP_SECONDS = env_int("EVALHUB_RETENTION_SWEEP_SECONDS", 3600, minimum=60)
# The span table's time partitions on PostgreSQL (tracing.partitions): days a partition covers
# (7: a week from Monday, UTC; 0: one table, as on SQLite), and how many partitions beat keeps
# created past the current one (daily).
EVALHUB_SPAN_PARTITION_DAYS = env_int("EVALHUB_SPAN_PARTITION_DAYS", 7, minimum=0)
EVALHUB_SPAN_PARTITIONS_AHEAD = env_int("EVALHUB_SPAN_PARTITIONS_AHEAD", 4, minimum=1)
EVALHUB_TASK_LATE_COMMIT_SECONDS = env_int("EVALHUB_TASK_LATE_COMMIT_SECONDS", 120, minimum=0)
# Monitors and automations (evalhub.monitors).
EVALHUB_MONITORS_TICK_SECONDS = env_int("EVALHUB_MONITORS_TICK_SECONDS", 15, minimum=1)
# The shortest window a monitor may watch (5 minutes; the integration tests shorten it).
EVALHUB_MONITOR_MIN_WINDOW_SECONDS = env_int("EVALHUB_MONITOR_MIN_WINDOW_SECONDS", 300, minimum=1)
EVALHUB_WEBHOOK_TIMEOUT_SECONDS = env_int("EVALHUB_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
EVALHUB_WEBHOOK_MAX_ATTEMPTS = env_int("EVALHUB_WEBHOOK_MAX_ATTEMPTS", 6, minimum=1)
EVALHUB_WEBHOOK_BACKOFF_SECONDS = env_int("EVALHUB_WEBHOOK_BACKOFF_SECONDS", 10, minimum=0)
# Automations' sweep for lost jobs: how often, and how long a result is left to its own job.
EVALHUB_AUTOMATIONS_SWEEP_SECONDS = env_int("EVALHUB_AUTOMATIONS_SWEEP_SECONDS", 60, minimum=1)
EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS = env_int(
    "EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS", 120, minimum=0
)
EVALHUB_BASE_URL = env_str("EVALHUB_BASE_URL", "http://127.0.0.1:8000") or ""
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

# --- security headers and cookies (README: Production → Security) ------------------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts, styles, fonts and images from our own static files only: no inline script, no
# inline style attribute, no eval. Pages set widths from data attributes in static/js/app.js.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "usb",
    )
}
# Behind TLS (at a reverse proxy): secure cookies, HSTS, and the proxy's word on the scheme.
EVALHUB_TLS = env_bool("EVALHUB_TLS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", EVALHUB_TLS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", EVALHUB_TLS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if EVALHUB_TLS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# The header a TLS-terminating proxy sets (and strips from clients): "X-Forwarded-Proto" by
# default with EVALHUB_TLS; "none": no such header (the app itself sees HTTPS).
_proxy_ssl_header = env_str(
    "EVALHUB_PROXY_SSL_HEADER", "X-Forwarded-Proto" if EVALHUB_TLS else "none"
)
if _proxy_ssl_header and _proxy_ssl_header.lower() != "none":
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + _proxy_ssl_header.upper().replace("-", "_"),
        "https",
    )

# Login attempts (django-axes, counters in the database, so every worker and host shares them):
# after EVALHUB_LOGIN_FAILURE_LIMIT failures for one account, or from one address, logging in
# there is refused (429) for EVALHUB_LOGIN_COOLOFF_MINUTES; a success resets the account's count.
AXES_FAILURE_LIMIT = env_int("EVALHUB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("EVALHUB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # lift a lock with: manage.py axes_reset_username <name> (or axes_reset)
AXES_LOCKOUT_CALLABLE = "evalhub.identity.views.login_locked_out"
AXES_CLIENT_IP_CALLABLE = "evalhub.identity.auth.client_ip"
# How many reverse proxies in front append to X-Forwarded-For (0: use the peer's address).
EVALHUB_TRUSTED_PROXIES = env_int("EVALHUB_TRUSTED_PROXIES", 0, minimum=0)

# Evaluator hub. Provider API keys are encrypted with keys derived from these secrets (newest
# first; every one decrypts); empty: SECRET_KEY and SECRET_KEY_FALLBACKS. See evalhub/providers/crypto.py.
EVALHUB_ENCRYPTION_KEYS = env_list("EVALHUB_ENCRYPTION_KEYS", [])
# Judge calls: attempts per call (retries on timeouts, 429 and 5xx) and the longest wait between.
EVALHUB_LLM_MAX_ATTEMPTS = env_int("EVALHUB_LLM_MAX_ATTEMPTS", 5, minimum=1)
EVALHUB_LLM_MAX_BACKOFF_SECONDS = env_int("EVALHUB_LLM_MAX_BACKOFF_SECONDS", 60, minimum=1)
# Provider concurrency / requests-per-minute limits hold across every process through Redis
# (REDIS_URL); without it (embedded mode) each process enforces them on its own.
EVALHUB_LIMITER_REDIS_URL = env_str("EVALHUB_LIMITER_REDIS_URL", REDIS_URL)

# Custom code evaluators (evalhub/evaluators/sandbox/run.py; README, "Isolation of code evaluators"): the user
# their code runs as when the worker runs as root (a name, uid or uid:gid; "current": the worker's
# own user, when it is not root), the queue web processes send it to, and how long they wait for
# a worker beyond the code's own timeout.
EVALHUB_SANDBOX_USER = env_str("EVALHUB_SANDBOX_USER", "nobody")
EVALHUB_SANDBOX_QUEUE: str = env_str("EVALHUB_SANDBOX_QUEUE", "sandbox")
EVALHUB_SANDBOX_WAIT_SECONDS = env_int("EVALHUB_SANDBOX_WAIT_SECONDS", 30, minimum=1)

# Requests to user-configured URLs (LLM providers; evalhub/core/outbound.py) never go to these networks
# (CIDR) or host names, checked when a URL is saved and at every connection. Listing the variable
# replaces the default: keep its entries when you add your own.
EVALHUB_OUTBOUND_DENY = env_list(
    "EVALHUB_OUTBOUND_DENY",
    [
        "169.254.0.0/16",  # IPv4 link-local: the metadata service of AWS, GCP, Azure, OpenStack
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "metadata.google.internal",
        "metadata.goog",
    ],
)
for _entry in EVALHUB_OUTBOUND_DENY:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?", _entry):
            raise ImproperlyConfigured(
                f"EVALHUB_OUTBOUND_DENY: {_entry!r} is neither a network (CIDR) nor a host name"
            ) from None

# Labeling queues: an item open in someone's labeling view is reserved to them this long.
EVALHUB_QUEUE_RESERVATION_SECONDS = env_int("EVALHUB_QUEUE_RESERVATION_SECONDS", 300, minimum=1)

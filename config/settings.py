"""Settings for the enforcement console, read from the environment.

Everything has a development default (SQLite, an embedded Celery broker, emails
written to files) so the quick start needs nothing but Python. ``DJANGO_PROFILE=production``
turns on the production profile, where the secret key and hosts must be given and
``manage.py check --deploy`` is clean.
"""

from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab  # noqa: F401  (documented for operators editing the schedule)
from django.core.exceptions import ImproperlyConfigured

from config.env import email_settings_from_url, env_bool, env_choice, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

PROFILE = env_str("DJANGO_PROFILE", "development")
if PROFILE not in {"development", "production", "test"}:
    raise ImproperlyConfigured(f"DJANGO_PROFILE={PROFILE!r}: use development, test or production.")
PRODUCTION = PROFILE == "production"

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    SECRET_KEY = "dev-only-insecure-key-" + "x" * 40
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.apps.ConsoleAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",  # passkeys, a django-otp device like the others
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "accounts",
    "enforcement",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A body over API_MAX_BODY_BYTES is a 413 on every route, before anything below reads it.
    "enforcement.api.limits.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.staff_signin.IdleTimeoutSessionMiddleware",  # Django's SessionMiddleware; see there
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): signed in with a second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Sessions past their absolute limit end; a password alone opens nothing while STAFF_2FA asks for more.
    "config.staff_signin.StaffSignInMiddleware",
    "axes.middleware.AxesMiddleware",  # answers a locked-out sign-in with the lockout page
    "config.outage.DatabaseOutageMiddleware",  # innermost: sees the views' database errors first
]

# The largest request body any route takes (the API, the GitHub endpoint, the admin's forms): over it, 413.
# Django's own limit on what it reads into memory is the same, so the two never disagree.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

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

# --- Database -------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not understood: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat share the file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound on the server, and a statement run this many times on a connection prepared there (parsed
    # and planned once): the report path's statements are the same on every report. "off" behind a pooler that
    # cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
    _prepare = env_str("DB_PREPARE_THRESHOLD", "5")
    if _prepare != "off":
        if not _prepare.isdigit():
            raise ImproperlyConfigured(f"DB_PREPARE_THRESHOLD={_prepare!r}: a number of executions, or off.")
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True,
                                                              prepare_threshold=int(_prepare))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or None  # the edge store of key states, and by default the cache
# The edge store alone, if not REDIS_URL's Redis: redis://... or redis+cluster://host:port[,host:port...].
EDGE_STORE_URL = env_str("EDGE_STORE_URL") or REDIS_URL
if EDGE_STORE_URL and EDGE_STORE_URL.partition("://")[0].lower() not in ("redis", "rediss", "unix", "redis+cluster"):
    raise ImproperlyConfigured("EDGE_STORE_URL must be a redis://, rediss://, unix:// or redis+cluster:// URL.")
# The gate's per-IP buckets group IPv6 addresses by network: one subscriber holds a whole /64.
EDGE_IPV6_PREFIX = env_int("EDGE_IPV6_PREFIX", 64, minimum=16)
if EDGE_IPV6_PREFIX > 128:
    raise ImproperlyConfigured(f"EDGE_IPV6_PREFIX={EDGE_IPV6_PREFIX} is longer than an IPv6 address (128).")
# The edge as a detector: the gate counts each key's rate-limited refusals per window of EDGE_ABUSE_WINDOW_SECONDS;
# every EDGE_DETECTOR_INTERVAL_SECONDS the console reports, under the source "gate", a key refused more than
# EDGE_ABUSE_REFUSALS times in a window (rate-limit-overuse) and, once that has gone on for EDGE_SUSTAINED_MINUTES
# in a row, sustained-rate-abuse. A secret or restricted key presented from a web page is reported as
# key-exposure; EDGE_BROWSER_SECRET=refuse also refuses it there (reason wrong_key_type).
EDGE_ABUSE_REFUSALS = env_int("EDGE_ABUSE_REFUSALS", 600, minimum=1)
EDGE_ABUSE_WINDOW_SECONDS = env_int("EDGE_ABUSE_WINDOW_SECONDS", 600, minimum=10)
EDGE_SUSTAINED_MINUTES = env_int("EDGE_SUSTAINED_MINUTES", 60, minimum=1)
EDGE_BROWSER_SECRET = env_choice("EDGE_BROWSER_SECRET", "report", ("report", "refuse"))
# The cache (API throttling, idempotency replays) may live in another Redis database, so that clearing
# the cache (FLUSHDB) can never empty the edge store.
CACHE_URL = env_str("CACHE_URL") or REDIS_URL
if CACHE_URL:
    # Short timeouts: a cache that is down or hung must fail fast (throttling and replays then fail open).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Axes first: it refuses a locked-out user before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# Staff sign-in. STAFF_2FA=required: a password alone opens nothing (admin or API session) until a second
# factor (a passkey, TOTP, or a recovery code) is given, or enrolled first. optional: only staff who enrolled
# one are asked.
STAFF_2FA = env_str("STAFF_2FA", "required" if PRODUCTION else "optional")
if STAFF_2FA not in {"required", "optional"}:
    raise ImproperlyConfigured(f"STAFF_2FA={STAFF_2FA!r}: use required or optional.")
# The gravest acts (approving a termination, deciding an appeal, creating a service token, editing a rule)
# ask for the second factor again when the last one is older than this.
STAFF_STEP_UP_MINUTES = env_int("STAFF_STEP_UP_MINUTES", 15, minimum=1)
OTP_TOTP_ISSUER = "Millimetric T&S"
# Sessions end when the browser closes, after SESSION_IDLE_MINUTES without a request (the session is saved on
# every request, so its expiry moves with use) and SESSION_MAX_HOURS after sign-in whatever happens.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_MAX_HOURS = env_int("SESSION_MAX_HOURS", 12, minimum=1)
# Lockout (django-axes): LOGIN_FAILURE_LIMIT failed sign-ins for one username, or from one address, within
# LOGIN_LOCKOUT_MINUTES lock it for that long; a wrong second-factor code or a failed passkey counts as a failed
# sign-in too, and the counts are cleared only once the whole sign-in succeeds. A lead unlocks in the admin
# (Staff sign-in); operators can run ``manage.py axes_reset`` (or ``axes_reset_username NAME`` /
# ``axes_reset_ip ADDRESS``).
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one alone locks
# Not on the password alone: a right password must not wipe the wrong codes given after it
# (enforcement.signin.signin_completed clears them once the second factor is given too).
AXES_RESET_ON_SUCCESS = False
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "otp_token"]  # never kept in the attempt records
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "enforcement.signin.client_address"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # leads unlock on the console's Staff sign-in page, with an audit event
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the device admins (superusers) never show a key

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic --noinput` copies the admin's and Swagger UI's files here (production: hashed names in a
# manifest); whitenoise serves them from gunicorn, with no separate web server.
STATIC_ROOT = Path(env_str("STATIC_ROOT") or str(VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Email ----------------------------------------------------------------
globals().update(email_settings_from_url(env_str("EMAIL_URL") or f"file://{VAR_DIR / 'mail'}", base_dir=BASE_DIR))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Millimetric Trust & Safety <trust@millimetric.ai>")
EMAIL_REPLY_TO = env_str("EMAIL_REPLY_TO", "trust@millimetric.ai")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
STAFF_ALERT_EMAILS = env_list("STAFF_ALERT_EMAILS", ["tns-oncall@millimetric.ai"])
# Where staff emails link to (the admin case page): the console's public address.
CONSOLE_BASE_URL = (env_str("CONSOLE_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")

# --- Passkeys (django-otp-webauthn) ---------------------------------------
# A passkey belongs to the relying party id, a domain (never an IP address): by default the console's host,
# or localhost when CONSOLE_BASE_URL is an address (open the dev console at http://localhost:8000 to use one).
# The browser signs the origin it was used on; only WEBAUTHN_ORIGINS are accepted (default: the console's).
_console = urlsplit(CONSOLE_BASE_URL)
_console_host = _console.hostname or "localhost"
try:
    ip_address(_console_host)
    _default_rp_id = "localhost"
except ValueError:
    _default_rp_id = _console_host
OTP_WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID") or _default_rp_id
OTP_WEBAUTHN_RP_NAME = env_str("WEBAUTHN_RP_NAME") or "Millimetric T&S"
_port = f":{_console.port}" if _console.port else ""
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("WEBAUTHN_ORIGINS", [f"{_console.scheme}://{OTP_WEBAUTHN_RP_ID}{_port}"])
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False  # a second factor only, after the password

# --- Celery ---------------------------------------------------------------
# The embedded default is kombu's filesystem transport: a worker and beat run as real
# processes and exchange messages through a directory, with no server to install.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery-broker"
    for _folder in (_queue_dir, VAR_DIR / "celery-control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# The queue tasks are sent to and workers read by default (one broker can then serve several installations).
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE") or "celery"
# /metrics asks the broker for the queue's depth; a broker slower than this is reported as -1, never a hung scrape.
METRICS_BROKER_TIMEOUT_SECONDS = env_float("METRICS_BROKER_TIMEOUT_SECONDS", 1.0, minimum=0.1, maximum=10.0)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
SWEEP_INTERVAL_SECONDS = env_int("SWEEP_INTERVAL_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE = {
    # One run at a time (an advisory lock); a run still queued when the next is due is dropped, not stacked.
    "enforcement-sweep": {
        "task": "enforcement.tasks.sweep",
        "schedule": timedelta(seconds=SWEEP_INTERVAL_SECONDS),
        "options": {"expires": SWEEP_INTERVAL_SECONDS},
    },
    # The edge store recovers from a lost publish: recent key changes every minute, everything hourly.
    "edge-republish-recent": {
        "task": "accounts.tasks.republish_key_states",
        "schedule": timedelta(seconds=60),
        "kwargs": {"window_seconds": 900},
    },
    # The metrics' daily roll-up (enforcement/services/rollups.py): today's figures are at most this old.
    "metrics-rollup": {
        "task": "enforcement.tasks.metrics_rollup",
        "schedule": timedelta(seconds=env_int("METRICS_ROLLUP_INTERVAL_SECONDS", 300, minimum=10)),
    },
    "service-token-use": {"task": "enforcement.tasks.record_token_use", "schedule": timedelta(seconds=60)},
    # A flushed or empty edge store is noticed and rebuilt within this many seconds.
    "edge-rebuild-if-lost": {
        "task": "accounts.tasks.rebuild_edge_store_if_lost",
        "schedule": timedelta(seconds=env_int("EDGE_REBUILD_CHECK_SECONDS", 15, minimum=1)),
    },
    "edge-rebuild": {
        "task": "accounts.tasks.republish_key_states",
        "schedule": timedelta(hours=1),
        "kwargs": {"window_seconds": None},
    },
    # What the gate counted and saw becomes violations (source "gate"); idempotent, so a late or repeated run
    # reports nothing twice.
    "edge-findings": {
        "task": "enforcement.tasks.report_edge_findings",
        "schedule": timedelta(seconds=env_int("EDGE_DETECTOR_INTERVAL_SECONDS", 60, minimum=1)),
    },
}

# --- Enforcement policy knobs ---------------------------------------------
ENFORCEMENT = {
    # Review deadline per case severity.
    "SLA_HOURS": {"critical": 1, "high": 4, "medium": 24, "low": 72},
    "STRIKE_WINDOW_DAYS": env_int("STRIKE_WINDOW_DAYS", 90, minimum=1),
    "REMEDIATION_DAYS": env_int("REMEDIATION_DAYS", 7, minimum=1),
    "APPEAL_WINDOW_DAYS": env_int("APPEAL_WINDOW_DAYS", 30, minimum=1),
    # An appeal is decided within this many hours of its submission (the appeals queue sorts by it).
    "APPEAL_DECISION_HOURS": env_int("APPEAL_DECISION_HOURS", 72, minimum=1),
    # An action awaiting a lead's approval is due by the case severity's SLA (SLA_HOURS) from its proposal.
    "APPLY_MAX_RETRIES": env_int("APPLY_MAX_RETRIES", 5, minimum=0),
    # An email that fails for a passing reason (server down, timeout, 4xx reply) is retried, with capped
    # exponential backoff, for this long after its first failure; only a 5xx for the recipient fails it at once.
    "EMAIL_RETRY_HOURS": env_int("EMAIL_RETRY_HOURS", 24, minimum=1),
    # An action scheduled longer ago than this without being applied is re-enqueued by the sweep.
    "SWEEP_GRACE_SECONDS": env_int("SWEEP_GRACE_SECONDS", 30, minimum=0),
    # One sweep takes at most this many due actions of each kind (lost applies, expiries), earliest due first,
    # and hands them to tasks SWEEP_CHUNK_SIZE ids a message; the next run takes the rest.
    "SWEEP_BATCH_SIZE": env_int("SWEEP_BATCH_SIZE", 100_000, minimum=1),
    "SWEEP_CHUNK_SIZE": env_int("SWEEP_CHUNK_SIZE", 500, minimum=1),
    # An action the sweep handed to a task is not sent again for this long (its task may be queued or retrying).
    "SWEEP_REQUEUE_BACKOFF_SECONDS": env_int("SWEEP_REQUEUE_BACKOFF_SECONDS", 600, minimum=0),
}

# The audit log's CSV export: a date range of at most this many days, read in keyset chunks of this many rows,
# each chunk's query stopped by PostgreSQL after this many milliseconds.
AUDIT_EXPORT_MAX_DAYS = env_int("AUDIT_EXPORT_MAX_DAYS", 366, minimum=1)
AUDIT_EXPORT_CHUNK_SIZE = env_int("AUDIT_EXPORT_CHUNK_SIZE", 2000, minimum=1)
AUDIT_EXPORT_STATEMENT_TIMEOUT_MS = env_int("AUDIT_EXPORT_STATEMENT_TIMEOUT_MS", 10_000, minimum=1)

# A trusted source acts first only while its precision over its last DETECTOR_MIN_DECIDED decided reports stays at
# or above DETECTOR_MIN_PRECISION (enforcement/services/detectors.py).
DETECTOR_MIN_DECIDED = env_int("DETECTOR_MIN_DECIDED", 20, minimum=1)
DETECTOR_MIN_PRECISION = env_float("DETECTOR_MIN_PRECISION", 0.9, minimum=0.0, maximum=1.0)

# --- REST API -------------------------------------------------------------
def _api_rate(name: str, default: str) -> str | None:
    """A throttle rate like ``6000/min``; ``off`` disables it."""
    value = (env_str(name, default) or "").strip()
    if value.lower() in {"off", "none", "0"}:
        return None
    count, _, period = value.partition("/")
    if not (count.isdigit() and int(count) > 0 and period[:1] in {"s", "m", "h", "d"}):
        raise ImproperlyConfigured(f"{name}={value!r}: use N/sec, N/min, N/hour, N/day, or off.")
    return value


REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "enforcement.api.schema.ApiAutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # JSON only, nested at most 32 deep, finite numbers, no NUL (lib.safe_json).
    "DEFAULT_PARSER_CLASSES": ["enforcement.api.parsers.SafeJSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "enforcement.api.auth.ServiceTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["enforcement.api.permissions.ScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["enforcement.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per service token or staff member, and per client address before authentication.
        "principal": _api_rate("API_THROTTLE_RATE", "6000/min"),
        "anonymous": _api_rate("API_ANON_THROTTLE_RATE", "600/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "enforcement.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "enforcement.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # How many proxies in front set X-Forwarded-For; 0 (the default): it is ignored and the client address is
    # REMOTE_ADDR, so a client cannot rotate the header to escape the per-address throttle.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0, minimum=0),
}
# Idempotency-Key: how long a POST's first answer is kept for replays (kept in the default cache).
API_IDEMPOTENCY_TTL_SECONDS = env_int("API_IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=60)
# Swagger UI's assets are served from this installation (drf-spectacular-sidecar), not a CDN.
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS = {
    "TITLE": "Millimetric enforcement console API",
    "DESCRIPTION": "The REST API of the trust and safety console, version 1: detectors report violations, the "
    "platform mirrors accounts and keys, automation works cases. Every error answers `{\"error\": {\"code\", "
    "\"message\", \"fields\"}}`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SeverityEnum": "enforcement.models.Severity",
        "CaseStatusEnum": "enforcement.models.CaseStatus",
        "ActionStatusEnum": "enforcement.models.ActionStatus",
        "ActionKindEnum": "enforcement.models.ActionKind",
        "KeyStatusEnum": "accounts.models.KeyStatus",
        "AccountStatusEnum": "accounts.models.Account.Status",
        "KeyKindEnum": "accounts.models.APIKey.Kind",
        "ViolationStatusEnum": "enforcement.models.Violation.Status",
        "AppealStatusEnum": "enforcement.models.Appeal.Status",
        "NotificationStatusEnum": "enforcement.models.Notification.Status",
        "ReportOutcomeEnum": "enforcement.services.detectors.OUTCOMES",
    },
}

# --- Integrations -------------------------------------------------------------
# GitHub secret scanning: a file holding GitHub's /meta/public_keys/secret_scanning answer as it is
# (``manage.py fetch_github_keys`` writes it). Unset: every delivery is refused (401).
GITHUB_SECRET_SCANNING_KEYS = env_str("GITHUB_SECRET_SCANNING_KEYS") or None

# --- Logging --------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Production profile -----------------------------------------------------
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"

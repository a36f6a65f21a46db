"""Settings for the loyalty back-office: one module, driven by the environment.

Every value a deployment tunes comes from an environment variable (django-environ);
the README lists them all. With ``DEBUG`` on, development defaults fill the gaps so
that ``make run`` works on a bare machine; with ``DEBUG`` off every secret must be
given explicitly and the project refuses to start otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env_file := env.str("LOYALTY_ENV_FILE", default=""):
    environ.Env.read_env(env_file)

DEBUG = env.bool("DEBUG", default=False)


# Used only with DEBUG on; with DEBUG off every secret must come from the environment.
_DEV_SECRET = "django-insecure-development-only-never-use-in-production-3c1f9e"  # noqa: S105


def _required_secret(name: str, *, dev_label: str) -> str:
    """A secret from the environment; with DEBUG on, a derived development value.

    Development values are derived from the development secret with a distinct label
    each, so the keys stay separate even in development. With DEBUG off a missing
    secret stops the start-up with a message naming it.
    """
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        digest = hmac.new(_DEV_SECRET.encode(), dev_label.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()
    raise ImproperlyConfigured(
        f"{name} is not set. It is required when DEBUG is off; see README.md, 'Environment variables'."
    )


SECRET_KEY = env.str("SECRET_KEY", default="") or (
    _DEV_SECRET if DEBUG else _required_secret("SECRET_KEY", dev_label="")
)
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# Separate keys per purpose (SECURITY.md, V6.4.1): field encryption (a list, newest first,
# for MultiFernet rotation), blind indexes, OTP hashing and the audit hash chain.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    _required_secret("FIELD_ENCRYPTION_KEYS", dev_label="field-encryption")
]
BLIND_INDEX_KEY = _required_secret("BLIND_INDEX_KEY", dev_label="blind-index")
OTP_HMAC_KEY = _required_secret("OTP_HMAC_KEY", dev_label="otp-hmac")
AUDIT_CHAIN_KEY = _required_secret("AUDIT_CHAIN_KEY", dev_label="audit-chain")
# Tamper-evident logs (README "Tamper-evident logs"): chain keys newest first as
# "id:secret,id:secret" (new links use the first; old links verify under theirs). Empty:
# AUDIT_CHAIN_KEY alone, under the id "k0". A new key is deployed second, introduced with
# ``manage.py rotate_chain_key <id>`` (a record signed by the previous key), then moved first.
AUDIT_CHAIN_KEYS = [tuple(item.split(":", 1)) for item in env.list("AUDIT_CHAIN_KEYS", default=[]) if ":" in item]
# Where the daily anchor goes outside the database: file:///path or mailto:address (empty: none).
AUDIT_ANCHOR_SINK = env.str("AUDIT_ANCHOR_SINK", default="")
if AUDIT_ANCHOR_SINK and not AUDIT_ANCHOR_SINK.startswith(("file://", "mailto:")):
    raise ImproperlyConfigured("AUDIT_ANCHOR_SINK supports file:// and mailto: only (object storage is not built in).")
# The key of the till data's keyed hashes (FRAUD.md, "Till data"): item SKUs and payment
# tender tokens are stored only as HMAC-SHA256 under it (``loyalty.ledger.tilldata``).
# Rotating it makes new hashes incomparable with old ones (returns against purchases).
TILL_DATA_HMAC_KEY = _required_secret("TILL_DATA_HMAC_KEY", dev_label="till-data")
# The seed of the Ed25519 key that signs vouchers' rotating QR tokens (tills check them
# with the published public key); the previous seeds' public keys stay published for
# verification while a rotation settles.
VOUCHER_SIGNING_KEY = _required_secret("VOUCHER_SIGNING_KEY", dev_label="voucher-signing")
VOUCHER_SIGNING_KEYS_PREVIOUS = env.list("VOUCHER_SIGNING_KEYS_PREVIOUS", default=[])

_purpose_keys = [
    SECRET_KEY, *FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY, OTP_HMAC_KEY, AUDIT_CHAIN_KEY, VOUCHER_SIGNING_KEY,
    TILL_DATA_HMAC_KEY,
]  # fmt: skip
if len(set(_purpose_keys)) != len(_purpose_keys):
    raise ImproperlyConfigured(
        "SECRET_KEY, FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY, OTP_HMAC_KEY, AUDIT_CHAIN_KEY, "
        "VOUCHER_SIGNING_KEY and TILL_DATA_HMAC_KEY must all be different keys."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "staffauth.apps.LoyaltyAdminConfig",
    "staffauth.apps.RolesConfig",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "staffauth.apps.TotpDevicesConfig",
    "staffauth.apps.BackupCodesConfig",
    "staffauth.apps.LockoutsConfig",
    "guardian",
    "auditlog",
    "staffauth.apps.SchedulesConfig",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "loyalty.apps.LoyaltyConfig",
    "staffauth.apps.StaffAuthConfig",
    "members.apps.MembersConfig",
    "vouchers.apps.VouchersConfig",
    "fraud.apps.FraudConfig",
    "compliance.apps.ComplianceConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "staffauth.middleware.RequestContextMiddleware",
    # Under /api/: card-like query values (422) and oversized bodies (413) refused at the door.
    "loyalty.api.middleware.ApiRequestGuardMiddleware",
    # Under /api/v1/: a client answered too many 404s (enumeration) gets 429 for a while.
    "loyalty.api.enumeration.ApiEnumerationGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "staffauth.middleware.StaffSessionTimeoutMiddleware",
    "staffauth.middleware.AccessDeniedLogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Axes last, as its documentation requires: it turns a lockout into the 429 response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loyalty.urls"
WSGI_APPLICATION = "loyalty.wsgi.application"
ASGI_APPLICATION = "loyalty.asgi.application"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'loyalty.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
# The ledger's hot path prepares its statements on PostgreSQL (planning them costs more
# than running them). Off for a connection pooler that cannot hold prepared statements.
DATABASE_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django's default None switches psycopg's prepared statements off altogether; its
    # ORM cursors bind client-side and never prepare, so only loyalty.kernel.rawsql's do.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Busy-wait instead of failing at once when the dev server and a command write together.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
# Production runs as a role that does not own the tables (README, "Database roles"):
# migrations connect as the owner (MIGRATION_DATABASE_URL, same database), then grant the
# application's role (DATABASE_APP_ROLE, by default DATABASE_URL's user) what it needs,
# no more: no UPDATE or DELETE on records of what happened.
MIGRATION_DATABASE = env.db("MIGRATION_DATABASE_URL", default="") if env.str("MIGRATION_DATABASE_URL", "") else None
DATABASE_APP_ROLE = env.str(
    "DATABASE_APP_ROLE",
    default=(
        DATABASES["default"].get("OPTIONS", {}).get("assume_role") or DATABASES["default"].get("USER", "")
        if MIGRATION_DATABASE
        else ""
    ),
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, results and cache -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    # No broker configured: tasks run in-process, the cache is local memory (first run, demo).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # A host named: kombu warns "No hostname was supplied" for a bare memory://.
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Authentication -----------------------------------------------------------------------
AUTH_USER_MODEL = "staffauth.StaffUser"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses locked-out username+IP pairs before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
STAFF_PASSWORD_MIN_LENGTH = env.int("STAFF_PASSWORD_MIN_LENGTH", default=12)
PASSWORD_HISTORY_DEPTH = env.int("PASSWORD_HISTORY_DEPTH", default=5)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": STAFF_PASSWORD_MIN_LENGTH},
    },
    {"NAME": "staffauth.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "staffauth.passwords.CharacterClassesValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "staffauth.passwords.PasswordHistoryValidator", "OPTIONS": {"depth": PASSWORD_HISTORY_DEPTH}},
]
LOGIN_URL = "admin:login"

# Lockout of username+IP pairs (django-axes). Values from the spec; tune per programme.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USE_ATTEMPT_EXPIRATION = True
# Not on password success: only a verified OTP resets the counter (views.OtpVerifyView),
# otherwise re-entering the password would give unlimited OTP guesses.
AXES_RESET_ON_SUCCESS = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_USERNAME_CALLABLE = "staffauth.net.axes_username"
AXES_CLIENT_IP_CALLABLE = "staffauth.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "staffauth/locked_out.html"
AXES_SENSITIVE_PARAMETERS = [
    # The username has its own column (staffauth.net.axes_username: card numbers redacted).
    "username",
    "password",
    "otp_token",
    "token",
    "new_password1",
    "new_password2",
    "csrfmiddlewaretoken",
]
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_VERBOSE = False
# Number of reverse proxies in front of the app that append to X-Forwarded-For. Zero means
# REMOTE_ADDR is the client; the header is then ignored (it is client-controlled).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# django-guardian: object permissions only. No "AnonymousUser" row: it would be an
# active staff account without a second factor.
ANONYMOUS_USER_NAME = None

# django-otp
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Loyalty back-office")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1
STAFF_BACKUP_CODE_COUNT = 8

# --- Sessions (admin) ---------------------------------------------------------------------
STAFF_SESSION_IDLE_TIMEOUT = timedelta(minutes=env.int("STAFF_SESSION_IDLE_MINUTES", default=15))
STAFF_SESSION_ABSOLUTE_TIMEOUT = timedelta(minutes=env.int("STAFF_SESSION_ABSOLUTE_MINUTES", default=240))
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = int(STAFF_SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
if not DEBUG:
    # __Host- cookies are Secure, host-only and path=/ (ASVS V3.4).
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# --- Security headers ---------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Only when the proxy strips a client-sent X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Internationalisation -----------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Kuala_Lumpur")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# In development whitenoise serves straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Uploaded documents that must never be public (adjustment justifications): no URL serves
# this folder; the admin serves a file only to those who may see its request.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": None},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only (415 otherwise), strict: duplicate keys, NaN and deep nesting are a 400.
    "DEFAULT_PARSER_CLASSES": ["loyalty.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Every API error is {"error": {"code", "message", "detail"?}} (loyalty/api/errors.py).
    "EXCEPTION_HANDLER": "loyalty.api.errors.api_exception_handler",
    # OPTIONS answers 405 rather than describing endpoints to anyone who asks.
    "DEFAULT_METADATA_CLASS": None,
    "DEFAULT_THROTTLE_RATES": {"till": env.str("TILL_RATE_LIMIT", default="600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty back-office API",
    "VERSION": "1.0.0",
    "DESCRIPTION": (
        "The till (POS) API. Every request is signed by the till: `X-Till-Key`, `X-Timestamp` (Unix "
        "seconds, by default within 300 s of the server clock) and `X-Signature`, the lowercase hex "
        "HMAC-SHA256 with the till's secret over `{timestamp}\\n{METHOD}\\n{path}\\n` followed by the raw body bytes. "
        "Every write takes an `Idempotency-Key` header; a retry with the same key and body returns the "
        "saved answer with `Idempotency-Replayed: true`. Bodies are JSON objects; unknown fields are "
        "refused. Any value that looks like a payment card number is refused with 422 "
        "`card_number_refused` and never stored. Every error is "
        '`{"error": {"code": ..., "message": ..., "detail"?: {...}}}`; branch on `code`. Every timestamp '
        "in every answer (replays and error details included) is ISO 8601 in UTC, written with `Z` "
        "(`2026-01-31T06:05:00Z`). A balance is `available` (spendable now), `held` (held by redemptions in "
        "progress) and `pending` (earned, inside the return window), the same in the till and member APIs. "
        "The signing recipe, a script and the demo's test till: docs/integrators.md.\n\n"
        "The member API (`/api/v1/auth/`, `/api/v1/me`) takes `Authorization: Bearer <access token>` from "
        "`auth/otp/verify` or `auth/refresh` (15 minutes; refresh tokens are single use and bound to the device "
        "they were issued to); its answers are never cached (`Cache-Control: no-store`) and no token, code or "
        "phone number is ever put in a URL."
    ),
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Choice sets that share a field name get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "ComplaintKindEnum": "compliance.models.consumer.Complaint.Kind",
        "ComplaintStateEnum": "compliance.models.consumer.Complaint.State",
        "DataRequestKindEnum": "compliance.models.requests.DataSubjectRequest.Kind",
    },
    # The refusals at the door of every operation (413, 422 card_number_refused): loyalty/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty.api.schema.door_refusals",
        "loyalty.api.schema.operation_examples",  # an example request and answer for every operation
    ],
    # The schema and docs are public and read-only; they need no till signature.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Requests must be signed, which Swagger UI cannot do: no "Try it out", and no
    # call to the public validator (it would load an image from validator.swagger.io).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "supportedSubmitMethods": []},
}

# --- Audit --------------------------------------------------------------------------------
AUDITLOG_MASK_CALLABLE = "staffauth.audit.mask_fully"
# auditlog would take the left-most (client-forged) X-Forwarded-For entry; our own
# RequestContextMiddleware supplies the real address to the security log instead.
AUDITLOG_DISABLE_REMOTE_ADDR = True

# --- Role limits: the one place every check reads (spec "Role-Based Access Control") -------
ROLE_LIMITS = {
    # Points a role may redeem at the till without an override (strictly below the value).
    "redeem_below": {
        "cashier": env.int("LIMIT_CASHIER_REDEEM_BELOW", default=500),
        "store_manager": env.int("LIMIT_MANAGER_REDEEM_BELOW", default=2000),
    },
}

# --- Vouchers and till redemption controls (issue 6) -------------------------------------------
VOUCHERS = {
    # A new QR token every this many seconds; a token is valid during its own step only.
    "qr_step_seconds": env.int("VOUCHER_QR_STEP_SECONDS", default=30),
    # Whole steps of clock skew a till may be behind or ahead (0: none).
    "qr_grace_steps": env.int("VOUCHER_QR_GRACE_STEPS", default=0),
    # Redemptions (a voucher bought with points) above this need a step-up (spec: >5,000).
    "step_up_above_points": env.int("VOUCHER_STEP_UP_ABOVE_POINTS", default=5000),
    # Goodwill vouchers: the largest reward (by its points price) each role may give.
    "goodwill_max_points": {
        "store_manager": env.int("VOUCHER_GOODWILL_MAX_POINTS_MANAGER", default=1000),
        "program_admin": env.int("VOUCHER_GOODWILL_MAX_POINTS_ADMIN", default=20000),
    },
    # A cashier redeeming more often than this in the window raises a fraud alert.
    "cashier_redemptions_alert": env.int("VOUCHER_CASHIER_REDEMPTIONS_ALERT", default=20),
    "cashier_redemptions_window_minutes": env.int("VOUCHER_CASHIER_REDEMPTIONS_WINDOW_MINUTES", default=60),
    # A till shift (staff clocked in) ends by itself after this many hours.
    "shift_max_hours": env.int("VOUCHER_SHIFT_MAX_HOURS", default=12),
    # The share of till redemptions drawn at random into the store manager's audit queue.
    "audit_sample_percent": env.float("VOUCHER_AUDIT_SAMPLE_PERCENT", default=5.0),
    # Points redeemed at the till in one hold: at least the minimum, at most the maximum
    # (spec "Validate redemption limits (min/max)").
    "redeem_min_points": env.int("VOUCHER_REDEEM_MIN_POINTS", default=100),
    "redeem_max_points": env.int("VOUCHER_REDEEM_MAX_POINTS", default=50000),
    # Points a store may redeem in its local day, points captures and vouchers (by their
    # reward's points price) together; 0: no cap.
    "store_daily_redeem_points": env.int("VOUCHER_STORE_DAILY_REDEEM_POINTS", default=0),
}

# --- Manual point adjustments: the one policy table every check reads ----------------------
# Spec "Manual Adjustment Controls" and the role definitions, reconciled (issue 4). Bands
# by the absolute number of points (credits and debits alike), first match wins:
# - who may request (and, for "direct", post at once);
# - the evidence each request must carry;
# - the approvals it needs: "supervisor" is a Store Manager of the request's store (for a
#   store-raised request) or a Program Administrator; "program_admin" a Program
#   Administrator; "fraud_review" a Fraud Analyst. Never the requester, never for one's
#   own member account;
# - whom it notifies: the member (by email or their usual channel) and headquarters.
ADJUSTMENT_POLICY = {
    "bands": [
        {
            "band": "direct",
            "up_to": env.int("ADJUST_DIRECT_UP_TO", default=499),
            "requesters": ["store_manager", "program_admin"],
            "evidence": [],
            "approvals": [],
            "notify_member": "message",
            "notify_hq": False,
        },
        {
            "band": "supervisor",
            "up_to": env.int("ADJUST_SUPERVISOR_UP_TO", default=2000),
            "requesters": ["store_manager", "program_admin"],
            "evidence": ["justification", "phone_verification"],
            "approvals": ["supervisor"],
            "notify_member": "email",
            "notify_hq": False,
        },
        {
            "band": "headquarters",
            "up_to": None,
            "requesters": ["store_manager", "program_admin"],
            "evidence": ["justification", "document", "identity_verification"],
            "approvals": ["program_admin", "fraud_review"],
            "notify_member": "email",
            "notify_hq": True,
        },
    ],
    # A request not decided within this many hours expires.
    "request_ttl_hours": env.int("ADJUST_REQUEST_TTL_HOURS", default=7 * 24),
    # Where headquarters hears of large adjustments (requested and posted).
    "hq_email": env.str("ADJUST_HQ_EMAIL", default="loyalty-hq@localhost"),
    # The written justification document: types checked by content, not by name.
    "document_max_bytes": env.int("ADJUST_DOCUMENT_MAX_BYTES", default=5 * 1024 * 1024),
    "document_types": ["application/pdf", "image/png", "image/jpeg"],
    # The daily adjustment report flags staff who raised at least this many requests in a day.
    "report_flag_requests_per_day": env.int("ADJUST_REPORT_FLAG_REQUESTS_PER_DAY", default=5),
}

# --- Member authentication (spec "Account Security"; issue 5) --------------------------------
MEMBER_AUTH = {
    "otp_digits": 6,
    "otp_valid_seconds": env.int("MEMBER_OTP_VALID_SECONDS", default=300),
    "otp_max_guesses": env.int("MEMBER_OTP_MAX_GUESSES", default=3),
    "otp_codes_per_hour": env.int("MEMBER_OTP_CODES_PER_HOUR", default=5),
    "otp_failures_per_day": env.int("MEMBER_OTP_FAILURES_PER_DAY", default=10),
    # Sign-in, enrolment and new-number codes requested per client address and per device
    # fingerprint in a clock hour, whatever the numbers (SMS pumping); 0: no cap. An address
    # can be a whole mobile network's NAT: raise it rather than switch it off.
    "otp_codes_per_hour_per_address": env.int("MEMBER_OTP_CODES_PER_HOUR_PER_ADDRESS", default=10),
    "otp_codes_per_hour_per_device": env.int("MEMBER_OTP_CODES_PER_HOUR_PER_DEVICE", default=5),
    "access_token_seconds": env.int("MEMBER_ACCESS_TOKEN_SECONDS", default=15 * 60),
    "step_up_seconds": env.int("MEMBER_STEP_UP_SECONDS", default=5 * 60),
    "email_link_hours": env.int("MEMBER_EMAIL_LINK_HOURS", default=24),
    # Member passwords (optional): previous passwords that may not be reused; the tier
    # from which signing in with a password also needs an SMS code (spec: tier 3+).
    "password_history": env.int("MEMBER_PASSWORD_HISTORY", default=5),
    "mfa_tier": env.int("MEMBER_MFA_TIER", default=3),
    # The version of the consent texts members see now (recorded with every choice).
    "consent_version": env.str("MEMBER_CONSENT_VERSION", default="2026-11"),
    # "queue": codes leave by a Celery task (the text encrypted on the broker), so the
    # answer takes as long whether or not the number is enrolled; "inline": sent after
    # commit by the web process (no worker needed, but the gateway's latency shows).
    "otp_sms_delivery": env.str("MEMBER_OTP_SMS_DELIVERY", default="queue"),
    # The Celery queue codes go through (a dedicated one keeps them from waiting behind
    # batch jobs; the worker must consume it: `celery worker -Q celery,<queue>`).
    "otp_sms_queue": env.str("MEMBER_OTP_SMS_QUEUE", default="celery"),
    # Per channel: idle and absolute limits in minutes (and the long-lived variants).
    "sessions": {
        "app": {"idle": 30, "absolute": 24 * 60, "absolute_biometric": 7 * 24 * 60},
        "web": {"idle": 15, "absolute": 4 * 60, "absolute_remember_me": 30 * 24 * 60},
        "kiosk": {"idle": 3, "absolute": 10},
    },
    # Two logins further apart than this speed could cover are impossible travel.
    "impossible_travel_kmh": env.int("MEMBER_IMPOSSIBLE_TRAVEL_KMH", default=1000),
    # New devices in a day from which the account is flagged.
    "new_devices_per_day_flag": env.int("MEMBER_NEW_DEVICES_PER_DAY_FLAG", default=3),
}
# Enforcement of the fraud team's actions and the automatic throttles (FRAUD.md §1 rows
# 25 and 28, §3 "Actions"); (p) defaults, none in the spec.
FRAUD_ENFORCEMENT = {
    # A fraud analyst's spending freeze lapses after this unless a Program Administrator
    # confirms it.
    "freeze_unconfirmed_hours": env.int("FRAUD_FREEZE_UNCONFIRMED_HOURS", default=72),
    # Proving identity by SMS code lifts a freeze only to a number verified this long
    # before the restriction began.
    "otp_lift_phone_age_days": env.int("FRAUD_OTP_LIFT_PHONE_AGE_DAYS", default=30),
    # Enumeration (row 25): a client with at least this many not-found answers from the
    # lookup endpoints in the window, making at least this share of its requests there,
    # is answered 429 too_many_not_found for the block; this many in an hour: severity high.
    "enumeration_404s": env.int("FRAUD_ENUMERATION_404S", default=20),
    "enumeration_window_seconds": env.int("FRAUD_ENUMERATION_WINDOW_SECONDS", default=5 * 60),
    "enumeration_share_percent": env.int("FRAUD_ENUMERATION_SHARE_PERCENT", default=50),
    "enumeration_block_seconds": env.int("FRAUD_ENUMERATION_BLOCK_SECONDS", default=15 * 60),
    "enumeration_404s_per_hour_high": env.int("FRAUD_ENUMERATION_404S_PER_HOUR_HIGH", default=100),
    # Personal-data reveals (row 28): more than this many distinct members in an hour, or
    # reveals in a day, throttle the staff member's reveals for the throttle time.
    "pii_reveal_members_per_hour": env.int("FRAUD_PII_REVEAL_MEMBERS_PER_HOUR", default=20),
    "pii_reveals_per_day": env.int("FRAUD_PII_REVEALS_PER_DAY", default=50),
    "pii_reveal_throttle_seconds": env.int("FRAUD_PII_REVEAL_THROTTLE_SECONDS", default=60 * 60),
    # The risk score's outcomes (FRAUD.md §2, ``fraud.outcomes``): after a subject's new
    # signals commit, a decision is made and applied (review: an alert; step_up: a case and,
    # for a member, an SMS step-up before the next redemption or contact change;
    # block_and_review: a priority case and, for a member, an automatic spending freeze).
    # False: decisions are still made and recorded, nothing is applied (a kill switch).
    "outcomes_enforced": env.bool("FRAUD_OUTCOMES_ENFORCED", default=True),
    # Subjects decided per task after a commit (a batch run touching more gets more tasks).
    "outcome_subjects_per_task": env.int("FRAUD_OUTCOME_SUBJECTS_PER_TASK", default=200),
}
# The member app's address: email verification links point at its /verify-email page
# (the token in the fragment, which no server receives or logs).
MEMBER_APP_URL = env.str("MEMBER_APP_URL", default="http://localhost:3000")
# Where a login's address is (for impossible travel): a class with locate(ip) -> (lat, lon) | None.
GEOLOCATION_BACKEND = env.str("GEOLOCATION_BACKEND", default="members.geo.NoGeolocation")

# --- Programme rules (the ledger) -------------------------------------------------------------
LOYALTY_EARN_POINTS_PER_UNIT = env.int("LOYALTY_EARN_POINTS_PER_UNIT", default=1)
LOYALTY_POINTS_VALID_DAYS = env.int("LOYALTY_POINTS_VALID_DAYS", default=365)
LOYALTY_HOLD_MINUTES = env.int("LOYALTY_HOLD_MINUTES", default=15)
# Earned points stay pending (not spendable) until the return window closes; 0 = at once.
LOYALTY_PENDING_DAYS = env.int("LOYALTY_PENDING_DAYS", default=0)
# Tiers: qualification on points earned (net of returns) in a rolling window; each tier
# has an earn multiplier (percent) and its own daily earning cap. JSON to override.
LOYALTY_TIER_WINDOW_DAYS = env.int("LOYALTY_TIER_WINDOW_DAYS", default=365)
LOYALTY_TIERS = env.json(
    "LOYALTY_TIERS",
    default=[
        {"tier": 1, "name": "Member", "threshold": 0, "multiplier_percent": 100, "daily_earn_points": 10000},
        {"tier": 2, "name": "Silver", "threshold": 5000, "multiplier_percent": 125, "daily_earn_points": 10000},
        {"tier": 3, "name": "Gold", "threshold": 20000, "multiplier_percent": 150, "daily_earn_points": 15000},
        {"tier": 4, "name": "Platinum", "threshold": 50000, "multiplier_percent": 200, "daily_earn_points": 20000},
    ],
)
# Per-member velocity limits (spec "Transaction Velocity Limits"), checked under the
# member's lock in the same transaction as the write. None switches a limit off.
LOYALTY_VELOCITY = {
    "earn_transactions_per_day": env.int("VELOCITY_EARN_TRANSACTIONS_PER_DAY", default=3),
    "redemptions_per_day": env.int("VELOCITY_REDEMPTIONS_PER_DAY", default=2),
    "redemption_share_of_balance_percent": env.int("VELOCITY_REDEMPTION_SHARE_PERCENT", default=50),
    "large_redemption_points": env.int("VELOCITY_LARGE_REDEMPTION_POINTS", default=5000),
    "large_redemption_cooling_hours": env.int("VELOCITY_LARGE_REDEMPTION_COOLING_HOURS", default=24),
}

# A return paid back on another tender than the purchase's (FRAUD.md row 15): "refuse"
# (409 refund_tender_mismatch, refund_advice "refuse") or "allow_and_flag" (the return is
# booked and flagged for review).
LOYALTY_RETURN_TENDER_MISMATCH = env.str("LOYALTY_RETURN_TENDER_MISMATCH", default="refuse")
if LOYALTY_RETURN_TENDER_MISMATCH not in ("refuse", "allow_and_flag"):
    raise ImproperlyConfigured("LOYALTY_RETURN_TENDER_MISMATCH must be refuse or allow_and_flag.")

# --- Access logging (COMPLIANCE.md §5) ------------------------------------------------------
# A staff member viewing more distinct members than this in a programme day raises a
# member_view_volume fraud alert.
ACCESS_MEMBER_VIEWS_PER_DAY = env.int("ACCESS_MEMBER_VIEWS_PER_DAY", default=200)

# --- Fraud detection, risk scores and cases (issue 14; ../shared/FRAUD.md) -------------------
# Every number of FRAUD.md's catalogue, each overridable by ``FRAUD_<NAME>`` in the
# environment (e.g. FRAUD_EARN_ABOVE_BASELINE_WEIGHT=25). fraud.config reads this dict
# (typed accessors, the names documented there); a change of any value writes a new
# fraud.FraudRuleset version (fraud.services.ruleset_current).


def _fraud(name: str, default: int) -> int:
    return env.int(f"FRAUD_{name.upper()}", default=default)


def _detector(code: str, *, weight: int, family: str, force: str | None = None, **thresholds: int) -> dict:
    return {
        "weight": _fraud(f"{code}_weight", weight),
        "family": family,
        "force": env.str(f"FRAUD_{code.upper()}_FORCE", default=force or "") or None,
        **{key: _fraud(f"{code}_{key}", value) for key, value in thresholds.items()},
    }


FRAUD = {
    "detectors": {
        "earn_above_baseline": _detector(
            "earn_above_baseline", weight=20, family="velocity", ratio_percent=150, min_over_points=500,
            baseline_days=90, min_earning_days=5, min_membership_days=30,
        ),
        "velocity_cap_streak": _detector(
            "velocity_cap_streak", weight=30, family="velocity", days_in_a_row=3, days_in_week=4
        ),
        "redemption_deviation": _detector(
            "redemption_deviation", weight=25, family="redemption", ato_weight=40, times_largest=3,
            history_days=180, floor_points=2000, first_ever_points=5000, after_change_hours=24,
        ),
        "redemption_spike": _detector(
            "redemption_spike", weight=30, family="redemption", window_minutes=15, sigmas=4, baseline_days=28,
            min_count=50,
        ),
        "store_issue_cap": _detector(
            "store_issue_cap", weight=20, family="insider", alert_weight=40, floor_points=50000,
            p95_percent=125, alert_percent=120, baseline_days=28,
        ),
        "store_adjust_rate": _detector(
            "store_adjust_rate", weight=30, family="insider", times_median=3, min_per_thousand=10, window_days=30
        ),
        "staff_adjust_frequency": _detector("staff_adjust_frequency", weight=15, family="insider", per_day=5),
        "adjust_salami": _detector(
            "adjust_salami", weight=35, family="insider", band_max_points=499, member_count=2, member_days=7,
            member_sum=500, staff_count=20, staff_days=30, staff_sum=5000, staff_median_max=100,
            edge_count=5, edge_percent=60, edge_from_points=450,
        ),
        "adjust_rationale_audit": _detector(
            "adjust_rationale_audit", weight=30, family="insider", supervisor_percent=5, direct_percent=2,
            min_sample=20, flagged_factor=3,
        ),
        "return_rate": _detector("return_rate", weight=10, family="returns", rate_percent=20, min_purchases=5,
                                 window_days=90),
        "return_cycle": _detector("return_cycle", weight=25, family="returns", rebuy_days=14, min_cycles=2,
                                  window_days=90),
        "return_unmatched": _detector("return_unmatched", weight=20, family="returns", till_alert_per_day=5),
        "return_other_store": _detector("return_other_store", weight=5, family="returns"),
        "return_tender_mismatch": _detector("return_tender_mismatch", weight=25, family="returns", refuse=1),
        "return_no_receipt_high": _detector("return_no_receipt_high", weight=20, family="returns",
                                            amount_minor=50000),
        "return_after_tier": _detector("return_after_tier", weight=20, family="returns", days=30),
        "return_shortfall": _detector("return_shortfall", weight=15, family="returns"),
        "return_ladder": _detector("return_ladder", weight=0, family="returns", window_days=180, warning_at=3,
                                   review_at=5),
        "many_ips": _detector("many_ips", weight=20, family="ato", force="step_up", high_weight=40, networks=5,
                              networks_overlapping=10, window_hours=24),
        "devices_rapid_change": _detector("devices_rapid_change", weight=30, family="ato", per_day=3),
        "impossible_travel": _detector("impossible_travel", weight=40, family="ato", force="block_and_review",
                                       kmh=1000, slack_km=100),
        "refresh_token_reuse": _detector("refresh_token_reuse", weight=50, family="ato", force="step_up",
                                         redemption_within_hours=24),
        "enrolment_farm": _detector("enrolment_farm", weight=30, family="ato", per_day=3),
        "enumeration_404": _detector("enumeration_404", weight=50, family="api", force="throttle", count=20,
                                     window_minutes=5, share_percent=50, throttle_minutes=15, case_per_hour=100),
        "voucher_rescan": _detector("voucher_rescan", weight=40, family="insider"),
        "cashier_redemption_frequency": _detector("cashier_redemption_frequency", weight=25, family="insider"),
        "redemption_irregular": _detector("redemption_irregular", weight=40, family="insider"),
        "staff_linked_accounts": _detector("staff_linked_accounts", weight=40, family="insider", min_count=3,
                                           window_days=90),
        "pii_reveal_volume": _detector("pii_reveal_volume", weight=50, family="insider", force="throttle",
                                       per_hour=20, per_day=50, throttle_minutes=60),
        # Access logging (COMPLIANCE.md §5): too many distinct members viewed in a day,
        # and a staff member opening their own member account.
        "member_view_volume": _detector("member_view_volume", weight=40, family="insider"),
        "own_member_account_access": _detector("own_member_account_access", weight=40, family="insider"),
    },
    # Row 6's cap T per store code (points a day), e.g. FRAUD_STORE_ISSUE_CAPS="KL01=80000,PJ02=60000";
    # other stores get max(floor_points, p95_percent of their 28-day p95).
    "store_issue_caps": {code: int(cap) for code, cap in env.dict("FRAUD_STORE_ISSUE_CAPS", default={}).items()},
    # Half-lives of a signal's weight, in days, per detector family.
    "half_life_days": {
        "ato": _fraud("half_life_ato", 3),
        "api": _fraud("half_life_api", 3),
        "velocity": _fraud("half_life_velocity", 7),
        "redemption": _fraud("half_life_redemption", 7),
        "returns": _fraud("half_life_returns", 30),
        "insider": _fraud("half_life_insider", 30),
    },
    # The lowest score of each outcome band (below "review": allow).
    "outcome_bands": {
        "review": _fraud("band_review", 30),
        "step_up": _fraud("band_step_up", 60),
        "block_and_review": _fraud("band_block_and_review", 80),
    },
    # Hours a case has to its due time, by severity (spec response times).
    "case_due_hours": {
        "critical": _fraud("due_hours_critical", 1),
        "high": _fraud("due_hours_high", 4),
        "medium": _fraud("due_hours_medium", 24),
        "low": _fraud("due_hours_low", 72),
    },
    # More alerts than this from one detector in an hour trip it (one detector_storm alert).
    "storm_alerts_per_hour": _fraud("storm_alerts_per_hour", 50),
    # A not_fraud closure snoozes the detectors that fired for the subject this long.
    "not_fraud_snooze_days": _fraud("not_fraud_snooze_days", 90),
    # Auto-assignment: an analyst holding this many open cases gets no more.
    "auto_assign_cap": _fraud("auto_assign_cap", 25),
}  # fmt: skip
# Who gets the fraud reports' summaries (figures only, no personal data): comma-separated.
FRAUD_REPORT_RECIPIENTS = env.list("FRAUD_REPORT_RECIPIENTS", default=["fraud-team@localhost"])
# Where a fraud case's request to deactivate a staff account goes (the system
# administrators' mailbox; the message holds the case reference, no personal data).
FRAUD_SYSADMIN_EMAIL = env.str("FRAUD_SYSADMIN_EMAIL", default="sysadmin@localhost")
# Data-subject requests (compliance.requests): reminders and overdue escalations go here.
DSR_NOTIFY_EMAIL = env.str("DSR_NOTIFY_EMAIL", default="dpo@localhost")

# --- Logging ------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "staffauth.logging.RedactingFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our SecurityEvent log records failures and lockouts; axes need not repeat them.
        "axes": {"level": "ERROR"},
        "django.db.backends": {"level": "WARNING"},
        # At DEBUG it logs a missing template variable with the whole template context,
        # which on some admin pages holds personal data.
        "django.template": {"level": "INFO"},
    },
}
# Libraries speak at WARNING and above in development (the first run's terminal shows the
# log-in block, not Django's autoreloader, Celery's task traces or kombu's chatter); the
# request log (django.server) stays. LIBRARY_LOG_LEVEL=INFO brings them back.
# Without DEBUG (and unset) they follow LOG_LEVEL like everything else.
LIBRARY_LOG_LEVEL = env.str("LIBRARY_LOG_LEVEL", default="WARNING" if DEBUG else "")
if LIBRARY_LOG_LEVEL:
    for _library in ("django", "celery", "kombu", "amqp", "django_celery_beat", "auditlog", "guardian", "urllib3"):
        LOGGING["loggers"].setdefault(_library, {}).setdefault("level", LIBRARY_LOG_LEVEL)  # type: ignore[attr-defined]

# --- Outbound messages ----------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="loyalty.notifications.OutboxFileEmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
# Development: each message (email or text) goes whole to a file here, and one line
# (masked address, file name) to the log: the terminal never shows a message's body.
OUTBOX_DIR = env.path("OUTBOX_DIR", default=BASE_DIR / "var" / "outbox")
EMAIL_FILE_PATH = str(OUTBOX_DIR)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="loyalty@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Text messages: production names its gateway's backend class here. Only development
# falls back to the console backend: it prints every message, sign-in codes included, so
# with DEBUG off a missing SMS_BACKEND stops the start-up like a missing secret.
SMS_BACKEND = env.str("SMS_BACKEND", default="")
if not SMS_BACKEND:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SMS_BACKEND is not set. It is required when DEBUG is off (the development console backend would "
            "print sign-in codes to the log); name the SMS gateway's backend class. See README.md, "
            "'Environment variables'."
        )
    SMS_BACKEND = "loyalty.notifications.ConsoleSmsBackend"
# Deliver each outbox message right after its transaction commits (a Celery task); the
# sweeper task delivers anything still queued either way.
NOTIFICATIONS_DELIVER_ON_COMMIT = env.bool("NOTIFICATIONS_DELIVER_ON_COMMIT", default=True)


# --- Till API -------------------------------------------------------------------------------
# Signed requests (loyalty/api/auth.py): how far X-Timestamp may be from the server clock.
TILL_SIGNATURE_MAX_SKEW_SECONDS = env.int("TILL_SIGNATURE_MAX_SKEW_SECONDS", default=300)
# Largest request body a till may send (bytes); larger answers 413.
TILL_MAX_BODY_BYTES = env.int("TILL_MAX_BODY_BYTES", default=16 * 1024)
# Largest request body the member API takes (bytes, every endpoint, signed in or not);
# larger answers 413 payload_too_large.
MEMBER_API_MAX_BODY_BYTES = env.int("MEMBER_API_MAX_BODY_BYTES", default=64 * 1024)
# Caps on what one request may carry: a purchase amount (minor units) and points.
TILL_MAX_AMOUNT_MINOR = env.int("TILL_MAX_AMOUNT_MINOR", default=100_000_000)
TILL_MAX_POINTS = env.int("TILL_MAX_POINTS", default=1_000_000)
# Item lines a purchase or a return may carry (``items``).
TILL_MAX_ITEM_LINES = env.int("TILL_MAX_ITEM_LINES", default=100)
# A purchase's occurred_at may be at most this old.
TILL_PURCHASE_MAX_AGE_DAYS = env.int("TILL_PURCHASE_MAX_AGE_DAYS", default=30)

# Retention purges (compliance/retention.py, README "Retention and legal holds"): the
# database role the purge function is called as (a role holding EXECUTE on it; empty:
# the connection's own role), and the lock timeout of each batch's transaction.
RETENTION_DB_ROLE = env.str("RETENTION_DB_ROLE", default="")
RETENTION_LOCK_TIMEOUT = env.str("RETENTION_LOCK_TIMEOUT", default="5s")
# Days after closure a closed member's personal data is crypto-shredded.
RETENTION_CLOSED_PII_DAYS = env.int("RETENTION_CLOSED_PII_DAYS", default=90)
# Long-inactive members (compliance/inactive.py): months idle with nothing on the balance
# before a warning, and days from the warning to the account's closure.
RETENTION_INACTIVE_MONTHS = env.int("RETENTION_INACTIVE_MONTHS", default=24)
RETENTION_INACTIVE_WARNING_DAYS = env.int("RETENTION_INACTIVE_WARNING_DAYS", default=30)
# Years each category's logs are kept (compliance/retention.py): the specification's periods
# are the defaults and the floor (a shorter period is ignored; the database refuses it too).
RETENTION_PERIODS = {
    "security": env.int("RETENTION_SECURITY_YEARS", default=3),
    "access": env.int("RETENTION_ACCESS_YEARS", default=2),
    "system": env.int("RETENTION_SYSTEM_YEARS", default=1),
}
# --- Consumer protection: complaints and disputes (issue 15) --------------------------------
# Deadlines in business days (Monday to Friday, programme time zone) from receipt: a first
# response, then a resolution; a reminder this many hours before either; the desk's
# address for escalations and unassigned reminders; the adjustment reason a points
# dispute resolved in the member's favour is requested under.
COMPLAINTS = {
    "respond_business_days": env.int("COMPLAINT_RESPOND_BUSINESS_DAYS", default=5),
    "resolve_business_days": env.int("COMPLAINT_RESOLVE_BUSINESS_DAYS", default=20),
    "remind_hours": env.int("COMPLAINT_REMIND_HOURS", default=24),
    "desk_email": env.str("COMPLAINT_DESK_EMAIL", default=""),
    "adjustment_reason": env.str("COMPLAINT_ADJUSTMENT_REASON", default="MISSED_EARN"),
    # Complaints a member may file through the app in any 24 hours (staff intake: no cap).
    "member_daily_limit": env.int("COMPLAINT_MEMBER_DAILY_LIMIT", default=5),
}

"""Test settings: the real settings module, with production-like defaults.

DEBUG is off (tests see what production does), keys are fixed test keys, TLS is
assumed terminated in front (no HTTPS redirect). PostgreSQL and Redis are used when
reachable; otherwise SQLite and in-process tasks, and the tests that need the real
services are skipped (see tests/conftest.py).
"""

import os
import tempfile

from tests.services import postgres_problem, redis_problem

TEST_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "test-secret-key-0f6c4b1e9a7d4e2c8b5a3f1d0e9c8b7a6f5e4d3c2b1a",
    "FIELD_ENCRYPTION_KEYS": "cHhgv-mtAlaSWkQ9ZuBGSAqPg0P7yJXg9Ghj6sxBLUk=",
    "BLIND_INDEX_KEY": "test-blind-index-key-5d1f0a9e8c7b6a5f4e3d2c1b",
    "OTP_HMAC_KEY": "test-otp-hmac-key-9e8d7c6b5a4f3e2d1c0b9a8f7e",
    "VOUCHER_SIGNING_KEY": "test-voucher-signing-key-7c5a3e1f9d8b6a4c2e0f1d3b",
    "AUDIT_CHAIN_KEY": "test-audit-chain-key-1a2b3c4d5e6f7a8b9c0d1e2f",
    "TILL_DATA_HMAC_KEY": "test-till-data-hmac-key-4b6d8f0a2c4e6a8c0e2f",
    "ALLOWED_HOSTS": "testserver,localhost,127.0.0.1",
    "SECURE_SSL_REDIRECT": "0",
    "LOG_LEVEL": "WARNING",
    # Required with DEBUG off; SMS stay in memory (set again below, whatever the environment says).
    "SMS_BACKEND": "loyalty.notifications.LocmemSmsBackend",
}
for key, value in TEST_ENV.items():
    os.environ.setdefault(key, value)

# Uploaded private documents go to a scratch folder, not the checkout's var/.
os.environ.setdefault("PRIVATE_MEDIA_ROOT", tempfile.mkdtemp(prefix="loyalty-private-"))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalty")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

SERVICE_PROBLEMS = {
    "postgres": postgres_problem(os.environ["DATABASE_URL"]),
    "redis": redis_problem(os.environ["REDIS_URL"]),
}
if SERVICE_PROBLEMS["postgres"] and os.environ.get("REQUIRE_SERVICES") != "1":
    os.environ["DATABASE_URL"] = "sqlite://:memory:"
if SERVICE_PROBLEMS["redis"] and os.environ.get("REQUIRE_SERVICES") != "1":
    os.environ["REDIS_URL"] = ""

from loyalty.settings import *  # noqa: E402,F403

# Collected static files are a deployment step; tests serve the source files.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
PRODUCTION_PASSWORD_HASHERS = PASSWORD_HASHERS  # noqa: F405
PASSWORD_HASHERS = ["tests.hashers.FastArgon2PasswordHasher"]

# Outbox delivery: tests call the delivery services themselves instead of leaving tasks
# on the real broker with no worker to run them; SMS stay in memory.
NOTIFICATIONS_DELIVER_ON_COMMIT = False
SMS_BACKEND = "loyalty.notifications.LocmemSmsBackend"
# Codes are read from the in-memory outbox, so they are sent by the test process itself.
MEMBER_AUTH = {**MEMBER_AUTH, "otp_sms_delivery": "inline"}  # noqa: F405

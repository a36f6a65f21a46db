"""Run manage.py or Python snippets in a child process with a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Production-like settings: DEBUG off, every secret given, TLS assumed.
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "prod-like-secret-5b0c1f7e3a9d2e8b4c6a1f0e7d3b9a5c2e8f4d1b6a0c3e9f7",
    "FIELD_ENCRYPTION_KEYS": "ys2FMEM8d7tJ1B_1TGvVsmZg6FzkcFukkrn4Xkj4EnI=",
    "BLIND_INDEX_KEY": "prod-like-blind-index-key-8c2e4a6b0d1f3e5a7c9b",
    "OTP_HMAC_KEY": "prod-like-otp-hmac-key-3e1d5b7f9a2c4e6d8b0a1c",
    "VOUCHER_SIGNING_KEY": "prod-like-voucher-signing-key-2b4d6f8a0c1e3a5c7e9b",
    "AUDIT_CHAIN_KEY": "prod-like-audit-chain-key-6f4d2b0a8e6c4a2e0d9b",
    "TILL_DATA_HMAC_KEY": "prod-like-till-data-hmac-key-1c3e5a7b9d0f2a4c6e8b",
    "ALLOWED_HOSTS": "loyalty.example.com",
    "DATABASE_URL": "sqlite:///:memory:",
    # Required with DEBUG off (no gateway here: messages stay in the process's memory).
    "SMS_BACKEND": "loyalty.notifications.LocmemSmsBackend",
}


def child_env(**overrides: str | None) -> dict[str, str]:
    """The current environment minus the project's settings, plus ``overrides``
    (a value of None removes the variable)."""
    from tests.settings import TEST_ENV

    project_keys = {*PRODUCTION_ENV, *TEST_ENV, "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in project_keys}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def env_on_test_database(**overrides: str | None) -> dict[str, str]:
    """``child_env`` for a child that runs under the test settings against this process's
    test database (``DATABASE_URL`` from the open connection), plus ``overrides``."""
    from django.db import connection

    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return child_env(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=url, **overrides)


def run_manage(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def run_python(code: str, *, env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )

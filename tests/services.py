"""Which real services the test run can reach: PostgreSQL, Redis, Chromium.

Probed once when the test settings load. A service that cannot be reached makes the
tests that need it skip with the reason, unless ``REQUIRE_SERVICES=1``, when the run
stops with the reason instead.
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import urlparse

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def postgres_problem(url: str) -> str | None:
    if not url.startswith(("postgres://", "postgresql://")):
        return f"DATABASE_URL is not PostgreSQL ({urlparse(url).scheme})"
    try:
        import psycopg

        parsed = urlparse(url)
        # Connect to the maintenance database: the test database is created later.
        with psycopg.connect(url.replace(parsed.path, "/postgres", 1) if parsed.path else url, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means "cannot use it"
        return f"PostgreSQL unreachable at {parsed.hostname}:{parsed.port or 5432} ({type(exc).__name__})"


def redis_problem(url: str) -> str | None:
    if not url:
        return "REDIS_URL is empty"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        return None
    except Exception as exc:
        return f"Redis unreachable at {url.split('@')[-1]} ({type(exc).__name__})"


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


def chromium_problem() -> str | None:
    return None if chromium_path() else "chromium is not installed (apt-get install chromium)"

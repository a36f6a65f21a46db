"""``GET /healthz``: is the database reachable, is the broker reachable."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return "down"
    return "ok"


def broker_status() -> str:
    if not settings.REDIS_URL:
        return "in-process"
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except redis.RedisError:
        return "down"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    """200 with each dependency's status; 503 when the database is down.

    A down broker degrades the service (scheduled jobs wait) but does not take it
    out of a load balancer, so it reports ``degraded`` with 200.
    """
    database, broker = database_status(), broker_status()
    status = "ok" if broker != "down" else "degraded"
    if database != "ok":
        status = "down"
    return JsonResponse(
        {"status": status, "database": database, "broker": broker},
        status=503 if database != "ok" else 200,
    )

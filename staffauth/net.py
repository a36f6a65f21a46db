"""Who is on the other end of a request: client IP and normalised username.

One function decides the client address for axes, the security log and anything
else, so a forged ``X-Forwarded-For`` cannot give different answers in different
places.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

from loyalty.kernel.pan import redact_pans


def client_ip(request) -> str | None:
    """The client's IP address, trusting exactly ``TRUSTED_PROXY_COUNT`` proxies.

    Each trusted proxy appends the address it received the request from to
    ``X-Forwarded-For``, so the client is the entry ``TRUSTED_PROXY_COUNT`` places from
    the right. Entries further left are client-supplied and ignored.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < count:
        return remote
    candidate = hops[-count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def normalise_username(username: str | None) -> str | None:
    from staffauth.models import StaffUser

    return StaffUser.normalize_username(username) if username is not None else None


def axes_username(request, credentials) -> str | None:
    """Username as axes counts it: case and surrounding spaces do not make a new counter."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = request.POST.get("username")
    return normalise_username(redact_pans(username) if isinstance(username, str) else username)

"""A member's API client, signed in: one helper for every member API test."""

from __future__ import annotations

from rest_framework.test import APIClient

from members.services.sessions import session_start


def member_client(member, *, channel: str = "app", fingerprint: str | None = None, **session) -> APIClient:
    """An API client carrying a new session's access token for ``member`` (the device is
    ``fp-<pk>`` unless told); the session's tokens are at ``client.tokens``."""
    tokens = session_start(
        member=member, channel=channel, device_fingerprint=fingerprint or f"fp-{member.pk}", **session
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens.access_token}")
    client.tokens = tokens
    return client

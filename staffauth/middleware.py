"""Request context and server-side staff session timeouts."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.utils import timezone

from staffauth.context import reset_current_request, set_current_request

SESSION_AUTH_AT = "_staff_auth_at"
SESSION_LAST_SEEN = "_staff_last_seen"


class RequestContextMiddleware:
    """Makes the current request available to services that record who and where,
    and gives it an id: in every log line, in ``X-Request-ID`` and on the error page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = uuid.uuid4().hex[:16]
        token = set_current_request(request)
        try:
            response = self.get_response(request)
        finally:
            reset_current_request(token)
        response["X-Request-ID"] = request.request_id
        return response


def session_started(request) -> None:
    """Stamp a freshly logged-in session with its start time (absolute timeout)."""
    now = timezone.now().timestamp()
    request.session[SESSION_AUTH_AT] = now
    request.session[SESSION_LAST_SEEN] = now


class StaffSessionTimeoutMiddleware:
    """Ends staff sessions idle for too long or older than the absolute limit.

    Enforced on the server from timestamps kept in the session, so a cookie kept
    alive by the browser cannot extend a session.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            self._enforce(request, user)
        return self.get_response(request)

    def _enforce(self, request, user) -> None:
        now = timezone.now().timestamp()
        started = request.session.get(SESSION_AUTH_AT)
        last_seen = request.session.get(SESSION_LAST_SEEN, started)
        if started is None:
            # A session from before this middleware (or a test's force_login): start now.
            session_started(request)
            return
        idle = now - last_seen > settings.STAFF_SESSION_IDLE_TIMEOUT.total_seconds()
        too_old = now - started > settings.STAFF_SESSION_ABSOLUTE_TIMEOUT.total_seconds()
        if idle or too_old:
            from staffauth.services import Kind, security_event_record

            security_event_record(
                kind=Kind.SESSION_EXPIRED, actor=user, detail={"reason": "idle" if idle else "absolute"}
            )
            request.staff_session_expired = True  # the logout receiver logs no second event
            logout(request)
            return
        request.session[SESSION_LAST_SEEN] = now


class AccessDeniedLogMiddleware:
    """Logs every 403 answered to a signed-in user as an ACCESS_DENIED security event.

    Runs outside the view's transaction, so the event survives the rollback of a
    refused change. Only the path is kept (never the query string or the body).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        # Staff only: the member API puts a member principal on the request, and members'
        # refusals belong to their own security log, not the staff one.
        if response.status_code == 403 and isinstance(user, get_user_model()) and user.is_authenticated:
            from staffauth.services import Kind, security_event_record

            security_event_record(
                kind=Kind.ACCESS_DENIED, actor=user, detail={"path": request.path[:200], "method": request.method}
            )
        return response

"""Request context and server-side staff session timeouts."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model, logout
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import get_exception_response
from django.urls import get_resolver, get_urlconf
from django.utils import timezone

from staffauth.context import reset_current_request, set_current_request

forbidden_logger = logging.getLogger("django.request")

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
    """Logs every 403 answered to a signed-in user as an ACCESS_DENIED security event,
    and every 403 as one log line.

    Runs outside the view's transaction, so the event survives the rollback of a
    refused change. Only the path is kept (never the query string or the body).

    The log line: ``Forbidden: <method> <path> (user <id>): <reason>`` at WARNING on
    ``django.request``, without a traceback. Django would log a ``PermissionDenied``
    with its whole traceback (``exc_info``) on every refused admin page; here the
    exception becomes the 403 page (the project's ``handler403``, as Django would
    answer) and the line, and the response is marked as logged so that Django does not
    log it again. A refusal that already logged its own line (CSRF) keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 403:
            return response
        user = getattr(request, "user", None)
        staff = user if isinstance(user, get_user_model()) and user.is_authenticated else None
        if not getattr(response, "_has_been_logged", False):
            _forbidden_log(request, staff, reason="forbidden")
            response._has_been_logged = True
        # Staff only: the member API puts a member principal on the request, and members'
        # refusals belong to their own security log, not the staff one.
        if staff is not None:
            from staffauth.services import Kind, security_event_record

            security_event_record(
                kind=Kind.ACCESS_DENIED, actor=staff, detail={"path": request.path[:200], "method": request.method}
            )
        return response

    def process_exception(self, request, exception):
        if not isinstance(exception, PermissionDenied):
            return None
        response = get_exception_response(request, get_resolver(get_urlconf()), 403, exception)
        user = getattr(request, "user", None)
        staff = user if isinstance(user, get_user_model()) and user.is_authenticated else None
        _forbidden_log(request, staff, reason=str(exception) or "permission denied")
        response._has_been_logged = True  # Django's handler would log it again, with the traceback
        return response


def _forbidden_log(request, staff, *, reason: str) -> None:
    # The path only: a query string can hold what was searched for. No request in
    # ``extra`` either (its repr has the query string).
    forbidden_logger.warning(
        "Forbidden: %s %s (user %s): %s",
        request.method,
        request.path[:200],
        staff.pk if staff is not None else "-",
        reason[:200],
        extra={"status_code": 403},
    )

"""The request being served, for code that records who and where (security events).

Set by ``RequestContextMiddleware``; ``None`` in tasks and commands, which pass
their actor explicitly.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.http import HttpRequest

_current_request: ContextVar[HttpRequest | None] = ContextVar("current_request", default=None)


def current_request() -> HttpRequest | None:
    return _current_request.get()


def current_request_id() -> str:
    request = _current_request.get()
    return getattr(request, "request_id", "-") if request is not None else "-"


def set_current_request(request):
    return _current_request.set(request)


def reset_current_request(token) -> None:
    _current_request.reset(token)

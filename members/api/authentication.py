"""How members authenticate to the API: ``Authorization: Bearer <access token>``.

The access token (``members.services.sessions``) is short-lived and signed; every request also
checks that its session is live (not ended, within its channel's idle and absolute
limits), so logout and revocation take effect at once. ``request.user`` is a
``MemberPrincipal`` (members are never Django users) and ``request.auth`` the session.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from loyalty.api.errors import ApiRefusal
from members.models import Member, MemberSession
from members.services.sessions import AccountRestricted, SessionRefused, access_token_authenticate

SCHEME = "Bearer"


class AccountRestrictedApi(ApiRefusal):
    """A locked or suspended member's token: 403 ``account_restricted`` with the case
    reference and what to do (``members.services.standing.restriction_notice``)."""

    default_code = "account_restricted"
    default_detail = "Your account is restricted. See detail for what to do."


@dataclass(frozen=True)
class MemberPrincipal:
    """The signed-in member, as DRF's ``request.user``."""

    member: Member
    session: MemberSession
    is_authenticated: bool = True
    is_anonymous: bool = False


class MemberTokenAuthentication(BaseAuthentication):
    """Failures answer 401 with the session service's stable code (``token_invalid``,
    ``token_expired``, ``session_ended``, ``session_timed_out``, …)."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme != SCHEME or not token.strip():
            return None
        try:
            session = access_token_authenticate(token.strip())
        except AccountRestricted as refusal:
            # Not an authentication failure: the member is known and told what to do (403).
            raise AccountRestrictedApi(str(refusal), detail=refusal.facts) from None
        except SessionRefused as refusal:
            raise exceptions.AuthenticationFailed(str(refusal), code=refusal.code) from None
        return MemberPrincipal(member=session.member, session=session), session

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to requests without a token.
        return f'{SCHEME} realm="members"'


class IsMember(BasePermission):
    """A member signed in with a live session."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, MemberPrincipal)


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "members.api.authentication.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The access token from /api/v1/auth/otp/verify or /api/v1/auth/refresh (15 minutes).",
        }

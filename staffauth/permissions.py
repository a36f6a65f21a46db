"""Who may do what with staff accounts, beyond the model permissions of the roles.

Roles (``staffauth.roles``) give the Django permissions; these rules hold on top of them
for every holder: nobody changes their own privileges or resets their own MFA, only a
superuser touches a superuser's account or hands out superuser status and individual
permissions, and staff accounts are deleted by superusers only (they carry the audit
trail; others deactivate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from staffauth.models import StaffUser


def may_manage_account(actor: StaffUser, user: StaffUser) -> bool:
    """May ``actor`` change ``user``'s account at all? Not a superuser's, unless one."""
    return actor.is_superuser or not user.is_superuser


def privilege_change_refused(actor: StaffUser, user: StaffUser) -> str | None:
    """Why ``actor`` may not change ``user``'s privileges (roles, stores, permissions,
    active flag), or None when they may."""
    if actor.pk == user.pk:
        return "own account"
    if not may_manage_account(actor, user):
        return "superuser account"
    return None


def may_grant_superuser(actor: StaffUser) -> bool:
    """Superuser status and individual permissions: handed out by superusers only."""
    return actor.is_superuser


def may_delete_staff(actor: StaffUser) -> bool:
    return actor.is_superuser


def may_reset_mfa(actor: StaffUser, owner: StaffUser) -> bool:
    """May ``actor`` delete ``owner``'s MFA device? Never one's own; a superuser's only as one."""
    return owner.pk != actor.pk and may_manage_account(actor, owner)

"""Receivers for library-owned signals (auth, axes, migrations): logging only, no flow."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_migrate
from django.dispatch import receiver
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.context import current_request
from staffauth.middleware import session_started
from staffauth.net import normalise_username
from staffauth.services import OTP_STAGE, Kind, security_event_record


@receiver(user_logged_in, dispatch_uid="staffauth_logged_in")
def on_logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_started(request)
    security_event_record(kind=Kind.LOGIN_SUCCEEDED, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="staffauth_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    if credentials.get("stage") == OTP_STAGE:
        return
    username = normalise_username(credentials.get("username")) or ""
    security_event_record(kind=Kind.LOGIN_FAILED, username=username, request=request)


@receiver(user_logged_out, dispatch_uid="staffauth_logged_out")
def on_logged_out(sender, request, user, **kwargs):
    if user is not None and not getattr(request, "staff_session_expired", False):
        security_event_record(kind=Kind.LOGOUT, actor=user, request=request)


@receiver(user_locked_out, dispatch_uid="staffauth_locked_out")
def on_locked_out(sender, request, username, ip_address, **kwargs):
    security_event_record(kind=Kind.LOCKED_OUT, username=username or "", request=request)


@receiver(post_delete, sender=TOTPDevice, dispatch_uid="staffauth_totp_removed")
@receiver(post_delete, sender=StaticDevice, dispatch_uid="staffauth_static_removed")
def on_device_removed(sender, instance, **kwargs):
    # An abandoned enrolment (never confirmed) is not a second factor being removed.
    if not instance.confirmed:
        return
    request = current_request()
    actor = getattr(request, "user", None) if request is not None else None
    security_event_record(
        kind=Kind.OTP_DEVICE_REMOVED, actor=actor, subject=instance.user, detail={"device": sender.__name__}
    )


@receiver(post_migrate, dispatch_uid="staffauth_sync_roles")
def on_post_migrate(sender, app_config=None, apps=None, **kwargs):
    # Sent once per app, in INSTALLED_APPS order: apply the roles after the last one,
    # when every app's permissions exist (later issues add models and permissions).
    from django.apps import apps as global_apps
    from django.contrib.auth.models import Group, Permission

    last = [config for config in global_apps.get_app_configs() if config.models_module][-1]
    if app_config is None or app_config.label != last.label:
        return

    from staffauth.roles import apply_roles

    apply_roles(Group=Group, Permission=Permission)

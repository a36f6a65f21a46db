"""The second login step of the admin: verify an OTP device, or enrol the first one."""

from __future__ import annotations

import segno
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from django import forms
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth.admin_site import safe_next
from staffauth.enrolment import staff_totp_enrol, staff_totp_pending_device
from staffauth.models import StaffUser
from staffauth.services import OTP_STAGE, Kind, security_event_record, staff_otp_check

ENROL_SESSION_KEY = "_staff_enrol_device"
WRONG_CODE = "That code is not valid. Check your device's clock and try again."


class TokenForm(forms.Form):
    otp_token = forms.CharField(
        label="Code",
        min_length=6,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
    )

    def clean_otp_token(self):
        return "".join(self.cleaned_data["otp_token"].split()).lower()


class _OtpStepView(View):
    admin_site = None
    template_name = ""

    def credentials(self, request) -> dict:
        return {"username": request.user.get_username(), "stage": OTP_STAGE}

    def context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "next": safe_next(request, ""),
            "title": "Two-factor verification",
            **extra,
        }

    def locked_out(self, request):
        """A locked username+IP pair loses its half-logged-in session too."""
        credentials = self.credentials(request)
        logout(request)
        return get_lockout_response(request, None, credentials)

    def is_allowed(self, request) -> bool:
        return AxesProxyHandler.is_allowed(request, self.credentials(request))

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        # One code check at a time per user: parallel guesses queue on the user's row,
        # so each sees the failures counted before it and the lockout is exact.
        with transaction.atomic():
            StaffUser.objects.select_for_update().filter(pk=request.user.pk).first()
            return super().dispatch(request, *args, **kwargs)

    def fail(self, request):
        """Count a wrong code as a failed login for axes, which may lock the pair."""
        security_event_record(kind=Kind.OTP_FAILED, actor=request.user)
        user_login_failed.send(sender=type(self), credentials=self.credentials(request), request=request)
        return getattr(request, "axes_locked_out", False)

    def wait(self, request, template_name: str, context: dict, form, seconds: int):
        """No device looked at the code (django-otp's back-off, after failures from
        several addresses): not a wrong code, so not counted; try again shortly."""
        form.add_error("otp_token", f"Too many wrong codes were entered for this account. Wait {seconds} seconds.")
        return render(request, template_name, context, status=429)

    def succeed(self, request, device):
        otp_login(request, device)
        # A new session key once the second factor is in (ASVS V3.2.1).
        request.session.cycle_key()
        AxesProxyHandler.reset_attempts(
            ip_address=request.axes_ip_address if hasattr(request, "axes_ip_address") else None,
            username=request.user.get_username(),
        )
        security_event_record(kind=Kind.OTP_VERIFIED, actor=request.user, detail={"device": type(device).__name__})


class OtpVerifyView(_OtpStepView):
    template_name = "staffauth/otp_verify.html"

    def get(self, request):
        if not self.is_allowed(request):
            return self.locked_out(request)
        return render(request, self.template_name, self.context(request, form=TokenForm()))

    def post(self, request):
        if not self.is_allowed(request):
            return self.locked_out(request)
        form = TokenForm(request.POST)
        if form.is_valid():
            devices = devices_for_user(request.user, confirmed=True)
            check = staff_otp_check(devices=devices, token=form.cleaned_data["otp_token"])
            if check.device is not None:
                self.succeed(request, check.device)
                return redirect(safe_next(request, reverse("admin:index", current_app=self.admin_site.name)))
            if check.wait_seconds is not None:
                context = self.context(request, form=form)
                return self.wait(request, self.template_name, context, form, check.wait_seconds)
            if self.fail(request):
                return self.locked_out(request)
            form.add_error("otp_token", WRONG_CODE)
        return render(request, self.template_name, self.context(request, form=form), status=200)


class OtpEnrolView(_OtpStepView):
    """First device: a TOTP secret shown as a QR code, confirmed by one valid code.

    The pending device is unconfirmed (it cannot log anyone in) until a code from it
    is entered; then backup codes are issued and shown once.
    """

    template_name = "staffauth/otp_enrol.html"

    def pending_device(self, request) -> TOTPDevice:
        """This session's unconfirmed device; a new session gets a new secret."""
        device = staff_totp_pending_device(user=request.user, device_id=request.session.get(ENROL_SESSION_KEY))
        if request.session.get(ENROL_SESSION_KEY) != device.pk:  # unchanged: the session is not saved again
            request.session[ENROL_SESSION_KEY] = device.pk
        return device

    def enrol_context(self, request, form):
        device = self.pending_device(request)
        uri = device.config_url
        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#1f2937", light="#ffffff")
        return self.context(
            request,
            form=form,
            qr_svg=qr_svg,
            secret=_b32(device.bin_key),
            otpauth_uri=uri,
            title="Set up two-factor authentication",
        )

    def get(self, request):
        if user_has_device(request.user):
            return redirect(reverse("admin:otp_verify", current_app=self.admin_site.name))
        if not self.is_allowed(request):
            return self.locked_out(request)
        return render(request, self.template_name, self.enrol_context(request, TokenForm()))

    def post(self, request):
        if user_has_device(request.user):
            return redirect(reverse("admin:otp_verify", current_app=self.admin_site.name))
        if not self.is_allowed(request):
            return self.locked_out(request)
        form = TokenForm(request.POST)
        device = self.pending_device(request)
        if not form.is_valid():
            return render(request, self.template_name, self.enrol_context(request, form))
        enrolment = staff_totp_enrol(user=request.user, device=device, token=form.cleaned_data["otp_token"])
        if enrolment.confirmed:
            request.session.pop(ENROL_SESSION_KEY, None)
            self.succeed(request, device)
            return render(
                request,
                "staffauth/otp_backup_codes.html",
                self.context(
                    request,
                    codes=enrolment.backup_codes,
                    title="Your backup codes",
                    continue_url=safe_next(request, reverse("admin:index", current_app=self.admin_site.name)),
                ),
            )
        if enrolment.wait_seconds is not None:
            context = self.enrol_context(request, form)
            return self.wait(request, self.template_name, context, form, enrolment.wait_seconds)
        if self.fail(request):
            return self.locked_out(request)
        form.add_error("otp_token", WRONG_CODE)
        return render(request, self.template_name, self.enrol_context(request, form))


class OtpLogoutView(View):
    """Log out from the second login step (the admin's own logout needs a verified session)."""

    admin_site = None

    def post(self, request):
        logout(request)
        return redirect(reverse("admin:login", current_app=self.admin_site.name))


def _b32(key: bytes) -> str:
    from base64 import b32encode

    return b32encode(key).decode().rstrip("=")

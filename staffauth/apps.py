from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.apps import AuthConfig
from django_celery_beat.apps import BeatConfig
from django_otp.plugins.otp_static.apps import DefaultConfig as StaticConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TotpConfig


class StaffAuthConfig(AppConfig):
    name = "staffauth"
    label = "staffauth"
    verbose_name = "Staff and security"

    def ready(self):
        from auditlog.registry import auditlog

        from staffauth import receivers  # noqa: F401  (connects the signal receivers)
        from staffauth.models import StaffUser

        auditlog.register(
            StaffUser,
            exclude_fields=["password", "last_login", "security_stamp"],
            mask_fields=["email", "first_name", "last_name"],
            m2m_fields={"groups", "stores"},
        )
        # Configuration changes: who changed which schedule, and how.
        from django_celery_beat.models import (
            ClockedSchedule,
            CrontabSchedule,
            IntervalSchedule,
            PeriodicTask,
            SolarSchedule,
        )

        for model in (PeriodicTask, CrontabSchedule, IntervalSchedule, SolarSchedule, ClockedSchedule):
            auditlog.register(model)


class LoyaltyAdminConfig(AdminConfig):
    """The admin, served by our OTP-enforcing site (see staffauth.admin_site)."""

    default_site = "staffauth.admin_site.LoyaltyAdminSite"

    def ready(self):
        super().ready()
        from loyalty.workplace.viewer import guard_readonly_links

        guard_readonly_links()


# Staff-facing names for the libraries' sections of the admin index.
class LockoutsConfig(AxesConfig):
    verbose_name = "Lockouts"


class TotpDevicesConfig(TotpConfig):
    verbose_name = "Two-factor: authenticator apps"


class BackupCodesConfig(StaticConfig):
    verbose_name = "Two-factor: backup codes"


class RolesConfig(AuthConfig):
    verbose_name = "Roles"


class SchedulesConfig(BeatConfig):
    verbose_name = "Scheduled jobs"

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


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


class LoyaltyAdminConfig(AdminConfig):
    """The admin, served by our OTP-enforcing site (see staffauth.admin_site)."""

    default_site = "staffauth.admin_site.LoyaltyAdminSite"

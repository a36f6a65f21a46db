from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Programme"

    def ready(self):
        from auditlog.registry import auditlog

        from loyalty.models import Store

        auditlog.register(Store)

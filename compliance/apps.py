from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"

    def ready(self) -> None:
        # The product's log filter redacts record attributes named after restricted fields
        # of the classification register (staffauth sits below compliance: injected here).
        from compliance.access import record
        from compliance.register import log_redacted_names
        from loyalty.kernel import access_log
        from staffauth import logging as staff_logging

        staff_logging.RESTRICTED_ATTRIBUTES = log_redacted_names()
        # The lower layers' access hooks (admin mixin, download helper) write through here.
        access_log.install(record)

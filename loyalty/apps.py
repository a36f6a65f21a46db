from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _open_system_accounts(sender, using="default", **kwargs):
    # Also after a flush (tests), which empties the tables without migrating again.
    from loyalty.ledger.services.core import system_accounts_open

    system_accounts_open(using=using)


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Programme"

    def ready(self):
        from auditlog.registry import auditlog

        from loyalty import checks  # noqa: F401 (registers the deploy checks)
        from loyalty.kernel.models import Store

        auditlog.register(Store)
        post_migrate.connect(_open_system_accounts, sender=self, dispatch_uid="loyalty_system_accounts")

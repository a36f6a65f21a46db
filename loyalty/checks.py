"""Deployment checks of the product's own (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def check_application_role(app_configs=None, **kwargs):
    """On PostgreSQL, production runs as a role that does not own the tables (the owner
    could switch the append-only triggers off): migrations need their own URL."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("postgresql") and not settings.MIGRATION_DATABASE:
        return [
            Warning(
                "The application connects to PostgreSQL as the role that runs the migrations, which owns "
                "the tables and could switch the append-only protections off.",
                hint="Set MIGRATION_DATABASE_URL to the owner's login and DATABASE_URL to the application's "
                "role (README, 'Database roles').",
                id="loyalty.W001",
            )
        ]
    return []

"""``migrate`` as the tables' owner, then the application's grants (README, "Database roles").

With ``MIGRATION_DATABASE_URL`` set, the migrations run on that connection (the owner's
login, same database) instead of ``DATABASE_URL``'s (the application's role, which may
not create or alter tables), and the application's role is then granted what it needs
and no more (``loyalty.kernel.dbroles``), so a new append-only table is never left writable.
Without it (first run, tests) this is Django's ``migrate``.
"""

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from loyalty.kernel import dbroles
from loyalty.kernel.db import owner_connection


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        alias = options["database"]
        with owner_connection(alias) as connection:
            super().handle(*args, **options)
            role = settings.DATABASE_APP_ROLE
            if connection.vendor == "postgresql" and role and settings.MIGRATION_DATABASE:
                dbroles.apply(connection, dbroles.app_grant_statements(connection, role))
                if options["verbosity"] >= 1:
                    self.stdout.write(f"Granted the application role {role} its privileges.")
        connections[alias].close()

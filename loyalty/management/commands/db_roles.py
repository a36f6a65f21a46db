"""Set up the database roles production runs as (README, "Database roles").

Run once by a database administrator (a role that may create roles, usually the
superuser), after ``migrate``; again at any time to reset the grants::

    manage.py db_roles --create --app-role loyalty_app --purger loyalty_purger
    manage.py db_roles --print     # the statements, to run by hand instead

It grants the application's role what it needs and no more (no UPDATE or DELETE on
records of what happened), hands the purge function to ``loyalty_retention`` and lets
the purger execute it. Logins and passwords are the administrator's to set
(``ALTER ROLE loyalty_app LOGIN PASSWORD ...``).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from loyalty.kernel import dbroles
from loyalty.kernel.append_only import RETENTION_ROLE
from loyalty.kernel.db import owner_connection


class Command(BaseCommand):
    help = "Create the application, retention and purger roles and grant them their privileges (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--app-role", default=settings.DATABASE_APP_ROLE, help="The web and worker processes' role."
        )
        parser.add_argument("--purger", default="", help="The retention worker's login (EXECUTE on loyalty_purge).")
        parser.add_argument("--create", action="store_true", help="Create the roles that do not exist (NOLOGIN).")
        parser.add_argument("--print", action="store_true", dest="print_only", help="Print the statements only.")

    def handle(self, *args, app_role, purger, create, print_only, **options):
        if not app_role:
            raise CommandError("name the application's role: --app-role or DATABASE_APP_ROLE")
        with owner_connection() as connection:
            if connection.vendor != "postgresql":
                raise CommandError("database roles apply to PostgreSQL only")
            statements = []
            if create:
                statements += [
                    dbroles.role_create_statement(connection, role, login=False)
                    for role in (app_role, RETENTION_ROLE, purger)
                    if role
                ]
            statements += dbroles.app_grant_statements(connection, app_role)
            statements += dbroles.retention_grant_statements(connection, purger=purger or None)
            if print_only:
                self.stdout.write(";\n".join(statements) + ";")
                return
            dbroles.apply(connection, statements)
        self.stdout.write(f"Granted {app_role}, {RETENTION_ROLE}" + (f" and {purger}" if purger else "") + ".")

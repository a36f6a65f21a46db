from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from staffauth.roles import README_TABLE_END, README_TABLE_START, apply_roles, permissions_markdown


class Command(BaseCommand):
    help = "Apply the staff roles of staffauth.roles to their groups (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--table",
            action="store_true",
            help="Print the README's permissions table (with its markers) instead of applying the roles.",
        )

    def handle(self, *args, table=False, **options):
        if table:
            self.stdout.write("\n".join([README_TABLE_START, "", permissions_markdown(), "", README_TABLE_END]))
            return
        try:
            counts = apply_roles(Group=Group, Permission=Permission)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} permissions")
        self.stdout.write(self.style.SUCCESS(f"Applied {len(counts)} roles."))

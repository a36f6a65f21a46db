from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError

from staffauth.roles import apply_roles


class Command(BaseCommand):
    help = "Apply the staff roles of staffauth.roles to their groups (idempotent)."

    def handle(self, *args, **options):
        try:
            counts = apply_roles(Group=Group, Permission=Permission)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} permissions")
        self.stdout.write(self.style.SUCCESS(f"Applied {len(counts)} roles."))

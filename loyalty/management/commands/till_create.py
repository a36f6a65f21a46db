"""``manage.py till_create STORE_CODE TILL_CODE [--allow-ip ADDRESS_OR_NETWORK ...]``

Creates a till and prints its key id and secret once: the secret is stored encrypted
and cannot be shown again (create a new till to replace a lost secret, then deactivate
the old one).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from loyalty.api.auth import till_create
from loyalty.kernel.models import Store, Till


class Command(BaseCommand):
    help = "Create a till (POS) for a store and print its API credentials once."

    def add_arguments(self, parser):
        parser.add_argument("store_code", help="Code of an existing store (case-insensitive).")
        parser.add_argument("till_code", help="Till code, unique within the store (letters, digits, . _ -).")
        parser.add_argument(
            "--allow-ip",
            action="append",
            default=[],
            metavar="ADDRESS_OR_NETWORK",
            help="Only accept this till's requests from this address or CIDR network (repeatable).",
        )

    def handle(self, *args, store_code: str, till_code: str, allow_ip: list[str], **options):
        store = Store.objects.filter(code__iexact=store_code).first()
        if store is None:
            raise CommandError(f"No store with code {store_code!r}.")
        if Till.objects.filter(store=store, code=till_code).exists():
            raise CommandError(f"Store {store.code} already has a till {till_code!r}.")
        try:
            till, secret = till_create(store=store, code=till_code, allowed_ips=allow_ip)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Till {till} created.")
        self.stdout.write(f"X-Till-Key: {till.key_id}")
        self.stdout.write(f"Secret:     {secret}")
        if till.allowed_ips:
            self.stdout.write(f"Allowed from: {', '.join(till.allowed_ips)}")
        self.stdout.write("Store the secret in the till now: it is encrypted here and will not be shown again.")

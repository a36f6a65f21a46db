from django.core.management.base import BaseCommand, CommandError

from compliance.chain import RotationRefused, rotate


class Command(BaseCommand):
    help = (
        "Introduce a new audit-chain key: one rotation record per stream at its head, MAC'd under the "
        "previous key and the new one. The new key must already be in AUDIT_CHAIN_KEYS (README: key rotation)."
    )

    def add_arguments(self, parser):
        parser.add_argument("key_id", help="The new key's id (as in AUDIT_CHAIN_KEYS).")

    def handle(self, *args, **options):
        try:
            written = rotate(options["key_id"])
        except RotationRefused as exc:
            raise CommandError(f"{exc.code}: {exc}") from exc
        for record in written:
            self.stdout.write(f"  {record.stream}: {record.prev_key_id} -> {record.key_id} at seq {record.seq}")
        self.stdout.write(
            self.style.SUCCESS(f"{len(written)} stream(s) rotated to {options['key_id']}; make it the newest key now.")
        )

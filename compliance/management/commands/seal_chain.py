from django.core.management.base import BaseCommand

from compliance.chain import seal_queue


class Command(BaseCommand):
    help = "Link the queued ledger chain entries now (the sealer task does it every 2 seconds)."

    def handle(self, *args, **options):
        self.stdout.write(f"Sealed {seal_queue():,} entries.")

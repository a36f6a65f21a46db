"""Re-wrap every member's data key under the newest programme key.

Rotation (SECURITY.md §3): deploy ``FIELD_ENCRYPTION_KEYS=K1,K2`` everywhere, then
``K2,K1``, then run this, then drop K1. Only the data keys are re-encrypted (one short
token per member); the personal-data fields, encrypted under the data keys, stay as
they are. Batches of ``--batch`` members per transaction, in primary-key order (keyset
pagination). Safe to rerun and to interrupt: a data key already under the newest key
is skipped, so a second run re-wraps nothing and an interrupted one resumes.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from loyalty.kernel.crypto import is_current, rotate_str
from members.models import Member

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Re-wrap members' data keys under the newest FIELD_ENCRYPTION_KEYS key (batched, idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500, help="members per transaction (default 500)")

    def handle(self, *args, batch: int, **options):
        keyed = Member.objects.exclude(data_key_wrapped="")
        total = keyed.count()
        done = rewrapped = 0
        last_pk = 0
        self._progress(done, total)
        while True:
            with transaction.atomic():
                rows = list(
                    keyed.filter(pk__gt=last_pk)
                    .order_by("pk")
                    .select_for_update(of=("self",))
                    .only("pk", "data_key_wrapped")[:batch]
                )
                if not rows:
                    break
                stale = [row for row in rows if not is_current(row.data_key_wrapped)]
                for row in stale:
                    row.data_key_wrapped = rotate_str(row.data_key_wrapped)
                # bulk_update: auditlog does not see it, and the column is excluded from
                # audit diffs anyway.
                Member.objects.bulk_update(stale, ["data_key_wrapped"])
            rewrapped += len(stale)
            done += len(rows)
            last_pk = rows[-1].pk
            self._progress(done, max(total, done))
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Re-wrapped {rewrapped} data key(s); {done - rewrapped} already under the newest key.")
        )

    def _progress(self, done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        filled = BAR_WIDTH * percent // 100
        self.stdout.write(f"\r[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {percent:3d}% ({done}/{total})", ending="")
        self.stdout.flush()

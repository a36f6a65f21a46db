"""Cost of a sync chain append: time per staff security event inserted with and without its
link, in one run (alternating rounds), printed, never asserted."""

import time

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models.signals import post_save

from staffauth.models import SecurityEvent


class Command(BaseCommand):
    help = "Measure the cost of a sync chain append (inserts with and without chaining; prints the ratio)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=2000, help="Inserts per round.")
        parser.add_argument("--rounds", type=int, default=3)

    def _round(self, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            with transaction.atomic():
                SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="bench", detail={})
        return (time.perf_counter() - start) / count * 1000

    def handle(self, *args, count, rounds, **options):
        chained, plain = [], []
        uid = "compliance.chain.security"
        receivers = [r for r in post_save.receivers if r[0][0] == uid]
        for _ in range(rounds):
            chained.append(self._round(count))
            post_save.disconnect(sender=SecurityEvent, dispatch_uid=uid)
            try:
                plain.append(self._round(count))
            finally:
                post_save.receivers.extend(receivers)
                post_save.sender_receivers_cache.clear()
        best_c, best_p = min(chained), min(plain)
        self.stdout.write(
            f"insert + commit, chained:   {best_c:.3f} ms (rounds: {', '.join(f'{x:.3f}' for x in chained)})"
        )
        self.stdout.write(
            f"insert + commit, unchained: {best_p:.3f} ms (rounds: {', '.join(f'{x:.3f}' for x in plain)})"
        )
        self.stdout.write(f"sync append: +{best_c - best_p:.3f} ms per insert, ratio {best_c / best_p:.2f}")
        self.stdout.write("(the bench leaves its rows and links behind: run it on a scratch database)")

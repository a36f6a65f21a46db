from django.core.management.base import BaseCommand, CommandError

from loyalty.ledger.verify import ledger_verify


class Command(BaseCommand):
    help = "Check every ledger invariant in one consistent snapshot; exits non-zero on any mismatch."

    def handle(self, *args, **options):
        report = ledger_verify()
        for check, rows in report.checks.items():
            self.stdout.write(f"  {check}: {rows:,} checked")
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(f"  MISMATCH {problem}")
            raise CommandError(f"Ledger verification failed: {len(report.problems)} problem(s).")
        self.stdout.write(self.style.SUCCESS("Ledger verified: every invariant holds."))

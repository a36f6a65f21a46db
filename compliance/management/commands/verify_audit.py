from django.core.management.base import BaseCommand, CommandError

from compliance.chain import STREAMS, verify


class Command(BaseCommand):
    help = "Verify the tamper-evident log chains (MACs, links, coverage, purges, anchors); exits non-zero on failure."

    def add_arguments(self, parser):
        parser.add_argument("--stream", action="append", choices=sorted(STREAMS), help="Only this stream (repeatable).")
        parser.add_argument("--anchor", help="A sink file of signed anchors: a head short of the last one fails.")

    def handle(self, *args, **options):
        from compliance.alerts import verification_failed
        from compliance.anchors import anchor_pins

        try:
            pins = anchor_pins(options["anchor"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        report = verify(options["stream"], pins=pins)
        for s in report.streams:
            took = f"{s.seconds:.2f} s"
            if s.ok:
                self.stdout.write(f"  {s.stream}: ok, {s.links:,} links, head {s.head}, {took}")
            else:
                self.stderr.write(f"  {s.stream}: BROKEN at seq {s.first_broken} ({s.problem}), {took}")
        if not report.ok:
            verification_failed(report, actor_job="verify_audit")
            raise CommandError("Audit chain verification failed.")
        self.stdout.write(self.style.SUCCESS("Audit chains verified."))

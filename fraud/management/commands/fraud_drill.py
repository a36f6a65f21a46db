"""``manage.py fraud_drill --seed S --profile ci|bench``: the fraud drill (FRAUD.md §5,
``fraud.drill``). Prints the scenario table; ``--json PATH`` writes the result,
``--golden PATH`` compares it (timings aside) with a golden file and fails on a
difference, ``--check`` fails when a judged scenario is below the floors."""

from __future__ import annotations

import difflib
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from fraud.drill import PROFILES, DrillRefused, drill_json, drill_run, drill_table


class Command(BaseCommand):
    help = "Run the fraud drill: a seeded population with injected fraud, the detectors, their scores."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--profile", choices=sorted(PROFILES), default="ci")
        parser.add_argument("--json", dest="json_path", help="Write the result (sorted JSON) here.")
        parser.add_argument("--golden", help="Compare with this golden JSON (timings aside); fail on a difference.")
        parser.add_argument("--check", action="store_true", help="Fail when a judged scenario is below the floors.")

    def handle(self, *args, seed, profile, json_path, golden, check, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The fraud drill runs on PostgreSQL (set DATABASE_URL).")
        self.stdout.write(self.style.MIGRATE_HEADING(f"Fraud drill: seed {seed}, profile {profile}"))
        try:
            result = drill_run(seed=seed, profile=profile, out=self.stdout.write)
        except DrillRefused as refused:
            raise CommandError(str(refused)) from refused
        for line in drill_table(result):
            self.stdout.write(line)
        if json_path:
            Path(json_path).write_text(drill_json(result))
            self.stdout.write(f"Result written to {json_path}")
        if golden:
            expected = Path(golden).read_text()
            actual = drill_json(result, timings=False)
            if expected != actual:
                diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), golden, "run"))
                raise CommandError(f"The drill differs from {golden}:\n{diff}")
            self.stdout.write(f"Same as {golden}.")
        if check and result["floors"]:
            raise CommandError("Below the floors: " + "; ".join(result["floors"]))

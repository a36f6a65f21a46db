"""manage.py retention_purge [--dry-run] [--category C]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from compliance.purge import UnknownCategory, evidence_report, retention_purge


class Command(BaseCommand):
    help = "Purge records past their retention period (or, with --dry-run, count them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count only: delete nothing.")
        parser.add_argument(
            "--category", help="One category of the policy (security, access, system, inactive, closed_pii)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = retention_purge(dry_run=options["dry_run"], started_by="command", category=options["category"])
        except UnknownCategory as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(evidence_report(run), indent=2))

"""``manage.py fraud_ruleset_replay [--days 30] [--json] [--config FILE | --ruleset N]``:
the last days' decisions scored again under a candidate ruleset and under the approved
one ("phantom decisions", ``fraud.replay``), with how many would change per outcome and
per detector.

The candidate is the configuration in force (its ruleset version, written if new) unless
``--config`` names a JSON file (a whole ``settings.FRAUD``) or ``--ruleset N`` a stored
version. A stored candidate keeps the replay (its admin page shows it, and a Program
Administrator approves it there); a file's is only printed."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from fraud import config as fraud_config
from fraud.models import FraudRuleset
from fraud.replay import (
    RulesetRefused,
    config_load,
    replay_text,
    ruleset_baseline,
    ruleset_replay,
    ruleset_replay_version,
)
from fraud.scoring import ruleset_current


class Command(BaseCommand):
    help = "Replay the last days' risk decisions under a candidate fraud ruleset and show what would change."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How many days back (default 30).")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the result as JSON.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--config", help="A candidate configuration: a JSON file of a whole settings.FRAUD.")
        source.add_argument(
            "--ruleset",
            type=int,
            dest="ruleset_version",
            help="A stored ruleset version (its number) as the candidate.",
        )

    def handle(self, *args, days, as_json, config, ruleset_version, **options):
        if days < 1 or days > 366:
            raise CommandError("--days is 1 to 366.")
        if config:
            try:
                candidate = config_load(config)
            except RulesetRefused as refused:
                raise CommandError(str(refused)) from refused
            sha = fraud_config.config_sha256(candidate)
            stored = FraudRuleset.objects.filter(sha256=sha).first()
        elif ruleset_version is not None:
            stored = FraudRuleset.objects.filter(version=ruleset_version).first()
            if stored is None:
                raise CommandError(f"No ruleset version {ruleset_version}.")
        else:
            stored = ruleset_current()
        if stored is not None:
            base = ruleset_baseline(stored.sha256)
            if config is None and ruleset_version is None and stored.approved:
                self.stdout.write(
                    f"The configuration in force is ruleset v{stored.version}, approved: nothing to replay "
                    "(give --config or --ruleset)."
                )
                return
            result = ruleset_replay_version(ruleset=stored, days=days)
            title = f"candidate v{stored.version} ({stored.sha256[:12]})"
        else:
            base = ruleset_baseline(sha)
            result = ruleset_replay(candidate=candidate, baseline=base.config if base else candidate, days=days)
            result.update(candidate_version=None, candidate_sha256=sha, baseline_version=base.version if base else None)
            title = f"candidate {config} ({sha[:12]}, not a stored version)"
        if as_json:
            self.stdout.write(json.dumps(result, indent=2, sort_keys=True))
            return
        against = (
            f"v{base.version} ({'approved' if base.approved else 'not approved'})"
            if base is not None
            else "itself (no other version)"
        )
        self.stdout.write(self.style.MIGRATE_HEADING(f"Ruleset replay: {title} against {against}, last {days} days"))
        for line in replay_text(result):
            self.stdout.write(line)

"""`make bench` keeps working: a short run of every part but the HTTP server (gunicorn
would not see the test database). It measures nothing here; it must run and report.

The bench forks its workers, so it runs in a child process of its own (forking the
multi-threaded test process could deadlock a child), against the test database.
"""

import pytest

from loyalty.ledger.models import LedgerOperation
from loyalty.ledger.verify import ledger_verify
from tests.subprocess_env import env_on_test_database, run_manage

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_short_bench_run_reports_every_figure_and_leaves_a_consistent_ledger():
    result = run_manage(
        "bench_ledger", "--seconds", "0.3", "--rounds", "2", "--history", "200", "--lots", "300",
        "--members", "20", "--skip-http",
        env=env_on_test_database(), timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = result.stdout
    assert "history: 200 earns in the ledger" in report
    assert report.count("plain SQL      1 worker(s)") == 2 and report.count("service        4 worker(s)") == 2
    assert "1 worker(s): service/baseline" in report and "scaling 4/1 workers" in report
    assert report.count("service+till   4 worker(s)") == 2 and "with till data/service" in report
    assert "300 lots: 2,100 points expired" in report and "lots left 0" in report
    assert "verify_ledger: " in report and "(every invariant holds)" in report, report
    # The service's earns are real ledger operations, and the ledger still adds up.
    assert LedgerOperation.objects.filter(actor_till__isnull=False).exists()
    assert ledger_verify().ok

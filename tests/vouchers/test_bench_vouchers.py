"""`make bench`'s voucher part keeps working: a short run through a real gunicorn against
the test database (the command passes its own environment, the test database's URL
included, to the server). It measures nothing here; it must run, report every figure and
leave what the redemptions should have written.

The bench forks its clients, so it runs in a child process of its own (forking the
multi-threaded test process could deadlock a child).
"""

import os
import re

import pytest

from tests.subprocess_env import env_on_test_database, run_manage
from vouchers.models import StaffShift, Voucher, VoucherRedemption, VoucherScan

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _env(**overrides):
    return env_on_test_database(REDIS_URL=os.environ.get("REDIS_URL"), **overrides)


def test_a_short_bench_run_reports_redemptions_beside_the_baseline():
    result = run_manage(
        "bench_vouchers", "--seconds", "0.5", "--rounds", "2", "--clients", "2", "--members", "10",
        env=_env(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert "VOUCHER_CASHIER_REDEMPTIONS_ALERT=1000000000" in report and "audit sample left at" in report
    assert "2 tills, 2 cashiers clocked in" in report and "voucher pools:" in report
    for round_no in (1, 2):
        assert report.count(f"round {round_no}: redeem") == 1, report
        assert report.count(f"round {round_no}: plain SQL 2 worker(s)") == 1, report
    # The rounds alternate: the baseline first in round 1, second in round 2.
    assert report.index("round 1: plain SQL") < report.index("round 1: redeem")
    assert report.index("round 2: redeem") < report.index("round 2: plain SQL")
    assert "ERRORS" not in report
    table = report.split("Voucher redemption throughput (2 tills")[1]
    assert "HTTP voucher redemptions" in table and "ledger baseline (plain SQL, 2 w.)" in table
    assert re.search(r"redemptions / baseline: \d+\.\d%", table)

    # Real redemptions: one per voucher, each by its till's own open shift, each scanned once.
    redeemed = VoucherRedemption.objects.count()
    counted = sum(int(n) for n in re.findall(r"(\d+) redemptions,", report))
    assert redeemed == counted > 0
    assert Voucher.objects.filter(status=Voucher.Status.REDEEMED).count() == redeemed
    assert VoucherScan.objects.filter(result="ok").count() == redeemed == VoucherScan.objects.count()
    shifts = StaffShift.objects.filter(ended_at__isnull=True)
    assert shifts.count() == 2 and len({s.till_id for s in shifts}) == 2
    assert set(VoucherRedemption.objects.values_list("shift_id", flat=True)) == {s.pk for s in shifts}


def test_refused_redemptions_are_counted_by_status_and_code_and_fail_the_run():
    # Shifts that end as soon as they start (the command and its server read the same
    # setting): every redemption is refused, which the warm-up reports before measuring.
    result = run_manage(
        "bench_vouchers", "--seconds", "0.3", "--clients", "2", "--members", "10",
        env=_env(VOUCHER_SHIFT_MAX_HOURS="0"), timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    refused = re.search(r"  0 redemptions, +0/s  ERRORS: (\d+) x 403 shift_required\n", result.stdout)
    assert refused and int(refused[1]) > 0, result.stdout
    assert f"the warm-up failed: {refused[1]} x 403 shift_required" in result.stderr
    assert "Voucher redemption throughput" not in result.stdout
    assert not VoucherRedemption.objects.exists()

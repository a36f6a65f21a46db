"""Celery tasks of the compliance app (thin: the services do the work). Schedules: the
compliance migrations (chain: 0002_chain_sql; retention: 0005_retention_schedule; data-subject requests: 0009)."""

from __future__ import annotations

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def chain_seal_task() -> int:
    """Link queued ledger entries in id order (one sealer at a time)."""
    from compliance.chain import seal_queue

    return seal_queue()


@retrying_task()
def chain_anchor_task() -> int:
    """Sign every stream's head into the database (every 15 minutes)."""
    from compliance.anchors import anchor_create

    return anchor_create().pk


@retrying_task()
def chain_anchor_external_task() -> int:
    """Sign every stream's head and write it to the outside sink (daily)."""
    from compliance.anchors import anchor_create, anchor_export

    anchor = anchor_create()
    anchor_export(anchor)
    return anchor.pk


@retrying_task()
def chain_verify_task() -> bool:
    """Verify every chain; a failure records a security event and alerts the security team."""
    from compliance.alerts import verification_failed
    from compliance.anchors import anchor_pins
    from compliance.chain import verify

    report = verify(pins=anchor_pins())
    if not report.ok:
        verification_failed(report, actor_job="chain_verify_task")
    return report.ok


@retrying_task()
def chain_unsealed_alert_task() -> int:
    """Alert when queued ledger entries stay unsealed for more than 5 minutes."""
    from compliance.alerts import unsealed_alert
    from compliance.chain import unsealed_older_than

    count = unsealed_older_than(5)
    if count:
        unsealed_alert(count)
    return count


@retrying_task()
def retention_purge_task() -> int:
    """The nightly retention purge (resumes an unfinished run first)."""
    from compliance.purge import retention_purge

    return retention_purge(dry_run=False, started_by="schedule").pk


@retrying_task()
def dsr_clock_task() -> dict:
    from compliance.requests import exports_expire, requests_clock

    counts = requests_clock()
    counts["exports_expired"] = exports_expire()
    return counts


@retrying_task()
def dsr_export_build_task(request_id: int) -> bool:
    from compliance.requests import export_build

    export_build(request_id=request_id)
    return True


@retrying_task()
def complaints_deadline_sweep_task() -> dict:
    """Remind before, and escalate after, complaint deadlines (``compliance.consumer``).
    Idempotent: each complaint is reminded and escalated at most once."""
    from compliance.consumer import complaints_deadline_sweep

    return complaints_deadline_sweep()

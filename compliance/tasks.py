"""Celery tasks of the compliance app (consumer protection part)."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def complaints_deadline_sweep_task() -> dict:
    """Remind before, and escalate after, complaint deadlines (``compliance.consumer``).
    Idempotent: each complaint is reminded and escalated at most once."""
    from compliance.consumer import complaints_deadline_sweep

    return complaints_deadline_sweep()

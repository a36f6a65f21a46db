"""The outbox's delivery jobs. The ledger's jobs are in ``loyalty/ledger/tasks.py``, the
adjustments' in ``loyalty/adjustments/tasks.py``."""

from loyalty.kernel.jobs import retrying_task


@retrying_task()
def message_deliver_task(message_id: int) -> str:
    """Deliver one outbox message (queued by ``loyalty.notifications``). Idempotent."""
    from loyalty.notifications import message_deliver

    return message_deliver(message_id=message_id)


@retrying_task()
def messages_deliver_task() -> int:
    """Deliver whatever the outbox still holds queued."""
    from loyalty.notifications import messages_deliver_queued

    return messages_deliver_queued()

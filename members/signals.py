"""What members tells the layers above it, without importing them (docs/architecture.md:
a lower layer never imports a higher one).

``security_event_recorded`` is sent once a ``MemberSecurityEvent`` is committed (never for
one rolled back), with ``event_id``, ``kind`` and ``member_id`` only: a receiver reads
the row itself. Fraud's account detectors (FRAUD.md rows 20-24) listen to it
(``fraud.receivers``). Receivers run after the commit and their errors are logged, never
raised into the member's request.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.dispatch import Signal

from members.models import MemberSecurityEvent

security_event_recorded = Signal()


def security_event_announce(event: MemberSecurityEvent) -> None:
    """Send ``security_event_recorded`` for ``event`` after the current transaction
    commits (at once outside one)."""
    transaction.on_commit(
        partial(
            security_event_recorded.send,
            sender=MemberSecurityEvent,
            event_id=event.pk,
            kind=event.kind,
            member_id=event.member_id,
        ),
        robust=True,
    )

"""What a failed chain verification or a stuck sealer sets off: a staff security event, a
fraud/security alert and a message to the system administrator (``FRAUD_SYSADMIN_EMAIL``).
No row content: stream names and sequence numbers only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone


def verification_failed(report: Any, *, actor: Any = None, actor_job: str = "") -> None:
    from fraud.services import fraud_alert_raise
    from loyalty.notifications import notify_address
    from staffauth.models import SecurityEvent
    from staffauth.services import security_event_record

    broken = {s.stream: {"seq": s.first_broken, "problem": s.problem} for s in report.streams if not s.ok}
    security_event_record(
        kind=SecurityEvent.Kind.AUDIT_CHAIN_BROKEN, actor=actor, detail={"broken": broken, "job": actor_job}
    )
    day = timezone.now().date().isoformat()
    fraud_alert_raise(
        kind="audit_chain_broken",
        dedupe_key=f"audit_chain_broken:{day}:" + ",".join(f"{k}@{v['seq']}" for k, v in sorted(broken.items())),
        severity="high",
        detail={"broken": broken},
    )
    lines = "\n".join(f"- {k}: first broken seq {v['seq']} ({v['problem']})" for k, v in sorted(broken.items()))
    notify_address(
        to=settings.FRAUD_SYSADMIN_EMAIL,
        subject="Tamper-evident log verification failed",
        body=f"verify_audit found broken chains:\n{lines}\nRun manage.py verify_audit for details.",
        topic="audit_chain_broken",
    )


def unsealed_alert(count: int) -> None:
    from fraud.services import fraud_alert_raise

    hour = timezone.now().strftime("%Y-%m-%dT%H")
    fraud_alert_raise(
        kind="audit_chain_unsealed", dedupe_key=f"audit_chain_unsealed:{hour}", severity="high", detail={"count": count}
    )

"""Members' background work: sending sign-in codes."""

from __future__ import annotations

import logging

from celery import shared_task
from cryptography.fernet import InvalidToken

from members.services.otp import otp_sms_send, otp_sms_unseal

logger = logging.getLogger(__name__)


@shared_task(name="members.otp_sms_deliver", ignore_result=True)
def otp_sms_deliver(sealed: str, challenge_id: str) -> None:
    """Send one queued sign-in code (see ``members.services.otp._sms_dispatch``). An empty
    recipient (a number that may not receive the code) and an expired code are dropped
    without a trace of either in the logs."""
    try:
        to, text = otp_sms_unseal(sealed)
    except InvalidToken:
        logger.info("otp sms for challenge %s dropped: expired or not readable", challenge_id)
        return
    if to:
        otp_sms_send(to=to, text=text, challenge_id=challenge_id)

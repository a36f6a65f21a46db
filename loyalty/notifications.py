"""Notifications through an outbox: what the programme tells members, staff and HQ.

``notify_member`` and ``notify_address`` write an ``OutboundMessage`` row in the caller's
transaction (a rolled-back action sends nothing; a committed one is never forgotten),
then delivery runs after commit as a Celery task, with a sweeper for anything a lost
task left queued. Delivery goes through the configured backends: Django's email backend
(files under ``var/outbox/`` in development, SMTP in production) and ``SMS_BACKEND``
(the same files in development, the gateway in production). Members' contact details are decrypted at
delivery only and never copied into the outbox, logs or the admin; a member without
an address on file (or whose data was erased) has the message held, not lost.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.core.mail import send_mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from loyalty.kernel.crypto import DecryptionFailed
from loyalty.kernel.models import OutboundMessage
from members.models import Member

log = logging.getLogger(__name__)
Channel, Status = OutboundMessage.Channel, OutboundMessage.Status


def notify_member(*, member: Member, channel: str, subject: str, body: str, topic: str) -> OutboundMessage:
    """Queue a message to ``member`` (``channel``: email, sms, or their preferred one)."""
    return _queue(OutboundMessage(channel=channel, member=member, subject=subject, body=body, topic=topic))


def notify_address(*, to: str, subject: str, body: str, topic: str) -> OutboundMessage:
    """Queue an email to a staff or headquarters address."""
    return _queue(OutboundMessage(channel=Channel.EMAIL, to=to, subject=subject, body=body, topic=topic))


def _queue(message: OutboundMessage) -> OutboundMessage:
    message.save(force_insert=True)
    if settings.NOTIFICATIONS_DELIVER_ON_COMMIT:
        from loyalty.tasks import message_deliver_task

        transaction.on_commit(partial(message_deliver_task.delay, message.pk))
    return message


def message_deliver(*, message_id: int) -> str:
    """Send one queued message; returns its new status. Safe to run twice: a message
    leaves ``queued`` once, under a row lock."""
    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update().filter(pk=message_id, status=Status.QUEUED).first()
        if message is None:
            return "not queued"
        status, detail = _send(message)
        message.status, message.detail = status, detail[:200]
        message.sent_at = timezone.now() if status == Status.SENT else None
        message.save(update_fields=["status", "detail", "sent_at"])
    return status


def messages_deliver_queued(*, batch: int = 100) -> int:
    """The sweeper: deliver what is still queued (a lost task, a broker outage)."""
    ids = list(OutboundMessage.objects.filter(status=Status.QUEUED).order_by("pk").values_list("pk", flat=True)[:batch])
    return sum(message_deliver(message_id=pk) == Status.SENT for pk in ids)


def _send(message: OutboundMessage) -> tuple[str, str]:
    if message.member_id is None:
        address, channel = message.to, Channel.EMAIL
    else:
        try:
            channel, address = member_contact(message.member, message.channel)
        except DecryptionFailed:
            return Status.FAILED, "contact details unreadable with the configured keys"
        if not address:
            return Status.HELD, "no contact details on file for this channel"
    try:
        if channel == Channel.EMAIL:
            send_mail(message.subject, message.body, None, [address])
        else:
            sms_backend().send(to=address, text=f"{message.subject}: {message.body}")
    except Exception as exc:  # a gateway or SMTP failure: recorded, never raised into the caller
        log.warning("message %s not delivered (%s)", message.pk, type(exc).__name__)
        return Status.FAILED, type(exc).__name__
    return Status.SENT, ""


def member_contact(member: Member, channel: str) -> tuple[str, str]:
    """The channel and address to reach ``member`` on, decrypted only here, at delivery.
    "preferred" is the member's preferred channel, else whichever address they have
    (email first). No address (none on file, or the member's data erased) is ""."""
    from members.services.pii import member_pii_read

    pii = member_pii_read(member)
    if channel == Channel.PREFERRED:
        channel = member.preferred_channel or (Channel.EMAIL if pii.email else Channel.SMS)
    address = pii.email if channel == Channel.EMAIL else pii.phone
    return channel, address or ""


def sms_backend():
    return import_string(settings.SMS_BACKEND)()


def outbox_file_write(*, channel: str, to: str, content: str) -> str:
    """Development: write one whole message to a new file under ``settings.OUTBOX_DIR``
    and log one line naming the channel, the address masked and the file (never the
    body: sign-in codes and personal data stay in the file). Returns the file's path."""
    from pathlib import Path

    folder = Path(settings.OUTBOX_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{timezone.now():%Y%m%d-%H%M%S-%f}-{channel}.txt"
    path.write_text(content, encoding="utf-8")
    try:
        shown = path.relative_to(settings.BASE_DIR)
    except ValueError:
        shown = path
    log.info("%s to %s: written to %s", channel, address_masked(to), shown)
    return str(path)


def address_masked(address: str) -> str:
    """An address as a log line may show it: a phone's country prefix, an email's domain."""
    if "@" in address:
        return "\u2022\u2022\u2022@" + address.rsplit("@", 1)[1]
    return address[:3] + "\u2022" * 4


class ConsoleSmsBackend:
    """Development: each text message whole to a file under ``OUTBOX_DIR`` (sign-in
    codes are read there), one line with the number masked on the console."""

    def send(self, *, to: str, text: str) -> None:
        outbox_file_write(channel="sms", to=to, content=f"To: {to}\n\n{text}\n")


class OutboxFileEmailBackend(BaseEmailBackend):
    """Development: each email whole to a file under ``OUTBOX_DIR``, one line with the
    address masked on the console (Django's console backend prints whole messages)."""

    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages or ():
            content = message.message().as_bytes().decode("utf-8", "replace")
            outbox_file_write(channel="email", to=", ".join(message.recipients()), content=content)
            sent += 1
        return sent


class LocmemSmsBackend:
    """Tests: keep sent messages in memory."""

    outbox: list[dict] = []

    def send(self, *, to: str, text: str) -> None:
        self.outbox.append({"to": to, "text": text})

"""The outbox: messages are written with what they report and delivered after commit."""

import pytest
from django.core import mail
from django.db import transaction

from loyalty.kernel.models import OutboundMessage
from loyalty.notifications import (
    LocmemSmsBackend,
    message_deliver,
    messages_deliver_queued,
    notify_address,
    notify_member,
)

pytestmark = pytest.mark.django_db


def test_an_address_gets_its_email_once(settings):
    message = notify_address(to="hq@example.com", subject="Large adjustment", body="Request #1", topic="adjustment")
    assert (message.status, len(mail.outbox)) == ("queued", 0)  # nothing leaves before delivery
    assert message_deliver(message_id=message.pk) == "sent"
    assert message_deliver(message_id=message.pk) == "not queued"  # a second delivery sends nothing
    assert [(m.to, m.subject, m.body) for m in mail.outbox] == [(["hq@example.com"], "Large adjustment", "Request #1")]
    message.refresh_from_db()
    assert message.status == "sent" and message.sent_at is not None


def test_a_message_to_a_member_without_contact_details_is_held_not_lost(member):
    message = notify_member(member=member, channel="email", subject="Points", body="10 points", topic="adjustment")
    assert messages_deliver_queued() == 0
    message.refresh_from_db()
    assert message.status == "held" and "no contact details" in message.detail and not mail.outbox


def test_a_failing_gateway_is_recorded_and_does_not_raise(monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr("loyalty.notifications.send_mail", broken)
    message = notify_address(to="hq@example.com", subject="s", body="b", topic="t")
    assert message_deliver(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert (message.status, message.detail) == ("failed", "ConnectionRefusedError")


def test_a_rolled_back_action_leaves_no_message():
    with pytest.raises(RuntimeError), transaction.atomic():
        notify_address(to="hq@example.com", subject="s", body="b", topic="t")
        raise RuntimeError("the action failed")
    assert not OutboundMessage.objects.exists()


def test_delivery_is_queued_on_commit_when_configured(settings, django_capture_on_commit_callbacks, monkeypatch):
    settings.NOTIFICATIONS_DELIVER_ON_COMMIT = True
    sent = []
    monkeypatch.setattr("loyalty.tasks.message_deliver_task.delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        message = notify_address(to="hq@example.com", subject="s", body="b", topic="t")
        assert sent == []  # not before the commit
    assert sent == [message.pk]


def test_a_message_needs_a_recipient():
    with pytest.raises(Exception, match="message_has_a_recipient"), transaction.atomic():
        OutboundMessage.objects.create(channel="email", subject="s", body="b", topic="t")


def test_a_member_is_reached_at_the_address_on_file(store_a):
    from members.services.membership import member_create

    member = member_create(home_store=store_a, email="Siti@Example.com", phone="012-345 6789", preferred_channel="sms")
    by_email = notify_member(member=member, channel="email", subject="Points", body="10 points", topic="t")
    preferred = notify_member(member=member, channel="preferred", subject="Points", body="5 points", topic="t")
    LocmemSmsBackend.outbox.clear()
    assert messages_deliver_queued() == 2
    assert [m.to for m in mail.outbox] == [["Siti@example.com"]]
    assert LocmemSmsBackend.outbox == [{"to": "+60123456789", "text": "Points: 5 points"}]
    # The outbox keeps no address of a member.
    assert set(OutboundMessage.objects.filter(pk__in=[by_email.pk, preferred.pk]).values_list("to", flat=True)) == {""}


def test_a_member_whose_data_was_erased_is_not_reached(store_a):
    from members.services.membership import member_create, member_pii_shred

    member = member_create(home_store=store_a, email="gone@example.com")
    member_pii_shred(member=member)
    message = notify_member(member=member, channel="email", subject="s", body="b", topic="t")
    assert messages_deliver_queued() == 0 and not mail.outbox
    message.refresh_from_db()
    assert message.status == "held"

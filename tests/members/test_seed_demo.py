"""Demo members get made-up personal data, encrypted, once; they enrolled as real
members do (with their consents); the integrators' test till is a real till."""

import re
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from fraud.models import FraudAlert
from loyalty.adjustments.models import AdjustmentReport, AdjustmentRequest
from loyalty.adjustments.reports import yesterday
from loyalty.kernel.crypto import decrypt_str
from loyalty.kernel.models import Till
from loyalty.ledger.models import LedgerOperation
from members.models import Consent, ConsentRecord, Member
from members.selectors import member_by_email
from members.services.consents import member_consents
from members.services.pii import member_pii_read
from vouchers.models import PendingRedemption, RedemptionAudit, TillRedemption, Voucher

pytestmark = pytest.mark.django_db(transaction=False)


def seed() -> str:
    out = StringIO()
    with override_settings(DEBUG=True):
        call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_gives_demo_members_encrypted_personal_data_once():
    seed()
    first = dict(Member.objects.values_list("pk", "data_key_wrapped"))
    operations = LedgerOperation.objects.count()
    seed()

    assert dict(Member.objects.values_list("pk", "data_key_wrapped")) == first
    assert LedgerOperation.objects.count() == operations  # a second run adds nothing
    members = list(Member.objects.order_by("pk"))
    assert all(member_pii_read(m).phone.startswith("+6012555") for m in members)
    assert member_by_email("DEMO.member1@example.com") == members[0]


def test_every_demo_member_has_essential_consent_granted_at_enrolment():
    seed()

    members = list(Member.objects.all())
    assert members
    for member in members:
        essential = member_consents(member)[Consent.Purpose.ESSENTIAL]
        assert essential.granted and essential.version, member.pk
        assert ConsentRecord.objects.filter(
            member=member, purpose=Consent.Purpose.ESSENTIAL, granted=True, source=ConsentRecord.Source.ENROLMENT
        ).exists()


def test_the_demo_till_is_a_real_till_and_its_credentials_are_printed():
    first, second = seed(), seed()

    till = Till.objects.get(store__code="KL01", code="DEMO")
    assert till.key_id == "demo-till"
    printed = re.findall(r"X-Till-Key: (\S+)\s+secret: (\S+)", first)
    assert printed == re.findall(r"X-Till-Key: (\S+)\s+secret: (\S+)", second) == [("demo-till", printed[0][1])]
    secret = printed[0][1]
    assert len(secret) >= 40 and secret not in till.secret_encrypted  # random, and stored encrypted
    assert decrypt_str(till.secret_encrypted) == secret
    assert "/api/docs/" in first.rsplit("Demo log-ins", 1)[1]


@pytest.mark.parametrize("local_hour", [None, 3])
def test_the_demo_has_something_on_every_page(local_hour):
    # Seeded now, and at 03:00 by the programme's clock (yesterday's requests must still
    # fall on yesterday: the nightly report's day).
    if local_hour is None:
        seed()
    else:
        early = timezone.localtime().replace(hour=local_hour, minute=0, second=0, microsecond=0)
        with time_machine.travel(early, tick=False):
            seed()
            assert AdjustmentReport.objects.get(day=yesterday()).rows

    kinds = set(LedgerOperation.objects.values_list("kind", flat=True))
    assert {"earn", "reverse_earn", "redeem", "expire", "hold", "capture", "adjust"} <= kinds
    assert set(AdjustmentRequest.objects.values_list("state", flat=True)) >= {"posted", "pending", "rejected"}
    report = AdjustmentReport.objects.get(day=yesterday())
    assert report.rows
    assert {"voucher_rescan", "redemption_irregular"} <= set(FraudAlert.objects.values_list("kind", flat=True))
    assert set(FraudAlert.objects.values_list("status", flat=True)) >= {"open", "closed"}
    assert Voucher.objects.filter(status="redeemed").exists() and Voucher.objects.filter(status="active").exists()
    assert PendingRedemption.objects.filter(status="pending").exists()
    assert RedemptionAudit.objects.filter(outcome="pending").exists()
    # A hold in progress.
    assert TillRedemption.objects.filter(captured_at__isnull=True, voided_at__isnull=True).exists()

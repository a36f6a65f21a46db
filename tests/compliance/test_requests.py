"""Data-subject requests (PDPA): intake, the identity CHECK, the clock, export, erasure."""

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from compliance import register
from compliance import requests as dsr
from compliance.access import record as access_record
from compliance.export import MEMBER_PATHS, NOT_THE_MEMBERS, export_fields
from compliance.models import DataExport, DataSubjectRequest, DataSubjectRequestEvent, ErasureCertificate
from fraud.models import FraudCase
from loyalty.ledger.verify import ledger_verify
from members.models import Member, MemberDevice, MemberPiiAccess
from members.services.consents import consents_record, member_consents
from members.services.pii import member_pii_read
from tests.members.conftest import SEEDED

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(staff_by_role):
    return staff_by_role["program_admin"]


def _staff_request(admin, member, kind, **kw):
    request, code = dsr.request_submit_by_staff(
        staff=admin, member=member, kind=kind, identity_check="nric_sighted", **kw
    )
    return request, code


def test_due_at_is_end_of_local_day_21():
    # 23:30 UTC on 1 March is 07:30 on 2 March in Kuala Lumpur: day 21 is 23 March local.
    due = dsr.due_at_for(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    assert due.astimezone(UTC) == datetime(2026, 3, 23, 15, 59, 59, 999999, tzinfo=UTC)


def test_database_refuses_work_before_identity_verification(seeded_members, admin):
    request, _ = _staff_request(admin, seeded_members[0], "access")
    with pytest.raises(IntegrityError), transaction.atomic():
        DataSubjectRequest.objects.filter(pk=request.pk).update(state="in_progress")
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.request_start(request_id=request.pk, staff=admin, reason="go")
    assert refused.value.code == "bad_transition"


def test_staff_intake_needs_member_confirmation_and_records_the_check_not_the_number(
    seeded_members, admin, staff_by_role
):
    member = seeded_members[0]
    with pytest.raises(dsr.RequestRefused) as refused:
        _staff_request(staff_by_role["store_manager"], member, "access")
    assert refused.value.code == "permission_denied"
    request, code = _staff_request(admin, member, "access")
    assert request.state == "identity_pending"
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.request_confirm_by_member(request_id=request.pk, code="00000000" if code != "00000000" else "1")
    assert refused.value.code == "wrong_code"
    request = dsr.request_confirm_by_member(request_id=request.pk, code=code)
    assert request.state == "verified" and request.identity_check == "nric_sighted"
    assert code not in json.dumps(list(DataSubjectRequestEvent.objects.values("detail", "reason")))


def test_member_api_intake_needs_a_step_up(seeded_members, step_up):
    member = seeded_members[0]
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.request_submit_by_member(member=member, kind="access")
    assert refused.value.code == "step_up_required"
    step_up(member, dsr.STEP_UP_ACTION)
    request = dsr.request_submit_by_member(member=member, kind="access")
    assert request.state == "verified" and request.identity_verified_at


def test_events_are_append_only(seeded_members, admin):
    _staff_request(admin, seeded_members[0], "access")
    # The application's role may not even try (no UPDATE grant) ...
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE compliance_datasubjectrequestevent SET reason = 'x'")


def test_events_are_append_only_for_the_owner_too(seeded_members, admin, owner_role):
    _staff_request(admin, seeded_members[0], "access")
    # ... and the trigger refuses a role granted too much.
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE compliance_datasubjectrequestevent SET reason = 'x'")


def test_clock_lapses_reminds_and_escalates_at_thresholds(seeded_members, admin):
    received = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 local
    request, _ = _staff_request(admin, seeded_members[0], "access", now=received)
    verified, code = _staff_request(admin, seeded_members[1], "access", now=received)
    dsr.request_confirm_by_member(request_id=verified.pk, code=code, now=received)
    # Day 6: nothing; day 7: one reminder each.
    assert dsr.requests_clock(now=received + timedelta(days=6))["reminders"] == 0
    assert dsr.requests_clock(now=received + timedelta(days=7))["reminders"] == 2
    assert dsr.requests_clock(now=received + timedelta(days=7, hours=1))["reminders"] == 0
    # 14 days less a minute: not lapsed; at 14 days: lapsed.
    assert dsr.requests_clock(now=received + timedelta(days=14, minutes=-1))["lapsed"] == 0
    assert dsr.requests_clock(now=received + timedelta(days=14))["lapsed"] == 1
    request.refresh_from_db()
    assert request.state == "cancelled"
    dsr.requests_clock(now=received + timedelta(days=18))
    verified.refresh_from_db()
    assert verified.reminders_sent == [7, 14, 18] and verified.escalated_at is None
    assert dsr.requests_clock(now=verified.due_at)["escalated"] == 0
    assert dsr.requests_clock(now=verified.due_at + timedelta(microseconds=1))["escalated"] == 1
    assert dsr.requests_clock(now=verified.due_at + timedelta(hours=1))["escalated"] == 0


def test_export_holds_every_listed_field_and_nothing_of_another_member(
    seeded_members, admin, earn, step_up, django_capture_on_commit_callbacks
):
    member, other = seeded_members[0], seeded_members[1]
    for m in (member, other):
        earn(m, 500)
        consents_record(member=m, choices={"email_marketing": True}, source="member")
    request, code = _staff_request(admin, member, "access")
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    with django_capture_on_commit_callbacks(execute=False):
        dsr.request_start(request_id=request.pk, staff=admin, reason="Member asked at the counter")
    MemberPiiAccess.objects.create(member=member, staff=admin, field="phone")  # staff who viewed their data
    access_record("member_view", staff=admin, member_id=member.pk, obj=member)
    token = dsr.export_build(request_id=request.pk)
    export = DataExport.objects.get(request=request)
    assert export.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(export.token_hash)
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.export_download(member=member, token=token)
    assert refused.value.code == "step_up_required"
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.export_download(member=other, token=token)
    assert refused.value.code == "export_not_found"
    step_up(member, dsr.STEP_UP_ACTION)
    body = dsr.export_download(member=member, token=token)
    with pytest.raises(dsr.RequestRefused):
        dsr.export_download(member=member, token=token)  # once only
    export.refresh_from_db()
    assert export.content is None and export.downloaded_at
    archive = zipfile.ZipFile(io.BytesIO(body))
    data = json.loads(archive.read("data.json"))
    manifest = json.loads(archive.read("manifest.json"))
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest
    assert data["profile"][0]["name"] == SEEDED[0]["name"]
    for label in MEMBER_PATHS:
        key = "profile" if label == "members.Member" else label
        for row in data[key]:
            assert set(export_fields(label)) <= set(row), label
    for label in ("loyalty.LedgerOperation", "loyalty.PointsLot", "members.ConsentRecord", "members.MemberPiiAccess"):
        assert data[label], label
    # the staff who viewed the member's data, by role, never by name
    assert {row["staff"] for row in data["members.MemberPiiAccess"]} == {"Program Administrator"}
    assert [row["kind"] for row in data["compliance.AccessEvent"]][:1] == ["member_view"]
    assert admin.username.encode() not in b"".join(archive.read(n) for n in archive.namelist())
    # the register decides: every restricted or regulated field of the member's tables is in
    # the bundle (secrets never), and every table with exported fields is reached
    for key, entry in register.REGISTER.items():
        app, model, field = key.split(".")
        label = f"{app}.{model}"
        if label in MEMBER_PATHS and entry.restricted and not entry.secret and key not in NOT_THE_MEMBERS:
            assert field.removesuffix("_encrypted") in export_fields(label), key
        if entry.export:
            assert label in MEMBER_PATHS, key
        if entry.secret and label in MEMBER_PATHS:
            assert field not in export_fields(label), key
    raw = b"".join(archive.read(n) for n in archive.namelist())
    for value in (SEEDED[1]["name"], "tan.zhiwei", str(other.member_id), other.loyalty_number, "789 4321", "7894321"):
        assert value.encode() not in raw
    kinds = set(DataSubjectRequestEvent.objects.filter(request=request).values_list("kind", flat=True))
    assert {"export_built", "export_downloaded"} <= kinds


def test_erasure_refused_while_a_fraud_case_is_open(seeded_members, admin):
    member = seeded_members[0]
    FraudCase.objects.create(
        member=member, subject_key=f"member:{member.pk}", inbox="ato", ruleset_version=1,
        due_at=datetime(2030, 1, 1, tzinfo=UTC), first_signal_at=datetime(2026, 1, 1, tzinfo=UTC),
        opened_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    request, code = _staff_request(admin, member, "erasure")
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    request = dsr.request_start(request_id=request.pk, staff=admin, reason="Asked")
    assert request.state == "refused" and request.refusal_code == "open_fraud_case" and request.refusal_basis


def test_erasure_refused_while_a_legal_hold_stands_and_allowed_once_released(seeded_members, admin):
    from compliance.holds import legal_hold_place, legal_hold_release
    from compliance.models import LegalHold

    member = seeded_members[0]
    hold = legal_hold_place(actor=admin, hold=LegalHold(scope="member", member=member, reason="Claim 2026/14"))
    request, code = _staff_request(admin, member, "erasure")
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    request = dsr.request_start(request_id=request.pk, staff=admin, reason="Asked")
    assert (request.state, request.refusal_code) == ("refused", "legal_hold")
    assert "legal hold" in request.refusal_reason and "Claim 2026/14" not in request.refusal_reason
    legal_hold_release(actor=admin, hold_id=hold.pk, reason="Claim settled")
    assert dsr.erasure_refusals(member) == []


def test_erasure_after_grace_leaves_no_plaintext_and_the_ledger_verifies(seeded_members, admin, earn):
    member = seeded_members[0]
    earn(member, 300)
    MemberDevice.objects.create(member=member, fingerprint_hash="f" * 64, label="Phone")
    request, code = _staff_request(admin, member, "erasure")
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    request = dsr.request_start(request_id=request.pk, staff=admin, reason="Asked")
    assert request.state == "in_progress" and request.grace_ends_at
    with pytest.raises(dsr.RequestRefused) as refused:
        dsr.erasure_run(request_id=request.pk, now=request.grace_ends_at - timedelta(seconds=1))
    assert refused.value.code == "grace_period"
    counts = dsr.requests_clock(now=request.grace_ends_at)
    assert counts["erased"] == 1
    request.refresh_from_db()
    assert request.state == "completed" and request.steps_done == list(dsr.ERASURE_STEPS)
    certificate = ErasureCertificate.objects.get(request=request)
    cert_text = json.dumps(certificate.body)
    assert SEEDED[0]["name"] not in cert_text and "ledger" in cert_text
    member.refresh_from_db()
    assert member.status == Member.Status.CLOSED and not MemberDevice.objects.filter(member=member).exists()
    assert member_pii_read(member).name is None if hasattr(member_pii_read(member), "name") else True
    # Every table's text: none of the member's plaintext.
    values = [SEEDED[0]["name"], SEEDED[0]["email"].lower(), "+60123456789", "60123456789", SEEDED[0]["address"]]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(f'SELECT lower(t::text) FROM "{table}" t')  # noqa: S608
            for (text,) in cursor.fetchall():
                for value in values:
                    assert value.lower() not in text, (table, value)
    assert ledger_verify().ok
    assert member_consents(member) is not None


def test_erasure_cancelled_in_grace(seeded_members, admin):
    request, code = _staff_request(admin, seeded_members[0], "erasure")
    dsr.request_confirm_by_member(request_id=request.pk, code=code)
    dsr.request_start(request_id=request.pk, staff=admin, reason="Asked")
    request = dsr.request_cancel(request_id=request.pk, by_member=seeded_members[0], reason="Changed my mind")
    assert request.state == "cancelled"


def test_consent_withdrawal_is_immediate(seeded_members, step_up):
    member = seeded_members[0]
    consents_record(member=member, choices={"email_marketing": True}, source="member")
    step_up(member, dsr.STEP_UP_ACTION)
    request = dsr.request_submit_by_member(
        member=member, kind="consent_withdrawal", detail={"purposes": ["email_marketing"]}
    )
    assert request.state == "completed"
    assert member_consents(member)["email_marketing"].granted is False

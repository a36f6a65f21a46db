"""The authorization matrix of the admin: every role (and anonymous) x every registered
admin model x view/add/change/delete and each custom action, against one table that
mirrors the spec's role definitions. A registered admin model missing from the table,
or an action the table does not know, fails the test.

A second table, MEMBER_PAGE_ORIGINS, says whose rows each role sees on the page of a
member who is active in several stores (members are programme-wide, their rows not).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.access import record as access_record
from compliance.consumer import complaint_file, terms_draft_save
from compliance.models import ChainHead, DataSubjectRequest, LegalHold, RetentionRun
from fraud.models import AuditSample, CaseEvent, FraudAlert, FraudCase
from fraud.reports import fraud_report_build
from fraud.scoring import ruleset_current, signal_raise
from fraud.services import Subject, alert_raise
from loyalty.adjustments.models import AdjustmentReason, AdjustmentReport
from loyalty.adjustments.services import Evidence, adjustment_request
from loyalty.kernel.models import OutboundMessage, Till
from loyalty.ledger.models import Account, LedgerOperation, PointsLot, Transfer
from loyalty.ledger.operations import Actor, points_earn, points_hold
from members.models import Member, MemberPiiAccess
from staffauth.models import SecurityEvent
from tests.conftest import login_verified
from tests.members import cross_store
from tests.reporting import add_figure
from vouchers.models import PendingRedemption, RedemptionAudit, Reward, StaffShift, TillRedemption, VoucherScan
from vouchers.services.issuing import voucher_goodwill_issue

pytestmark = pytest.mark.django_db

V, A, C, D = "view", "add", "change", "delete"
ALL = {V, A, C, D}
ROLES = ["cashier", "store_manager", "program_admin", "system_admin", "fraud_analyst"]

# model -> role -> allowed operations ("action:<name>" for custom admin actions).
# Roles not listed may do nothing with the model. Spec: security-and-compliance.txt,
# "Role-Based Access Control" and "Log Protection" (logs: security team only).
_LOGS = {"system_admin": {V}, "fraud_analyst": {V}}
_BEAT = {"system_admin": ALL}
MATRIX: dict[str, dict[str, set[str]]] = {
    # The reward catalogue is programme set-up; rewards are deactivated, never deleted.
    "vouchers.reward": {"program_admin": {V, A, C}},
    # Vouchers are read-only; "add" is the goodwill form (roles with a goodwill limit),
    # revoking is an action of its own (vouchers.revoke_voucher).
    "vouchers.voucher": {
        "store_manager": {V, A},
        "program_admin": {V, A, "action:revoke_selected"},
        "fraud_analyst": {V},
    },
    # The till's records: store managers see their stores' shifts, scans and audit sample
    # (and review the sample); the fraud team reads everything and closes alerts.
    "vouchers.staffshift": {"store_manager": {V}, "fraud_analyst": {V}},
    "vouchers.voucherscan": {"store_manager": {V}, "fraud_analyst": {V}},
    "vouchers.redemptionaudit": {
        "store_manager": {V, "action:confirm_selected", "action:mark_irregular_selected"},
        "fraud_analyst": {V},
    },
    "fraud.fraudalert": {"fraud_analyst": {V, "action:close_selected"}},
    # Fraud cases: the fraud team works them (the case page's buttons, CASE_ACTIONS below);
    # programme administrators read them (they raise reversals and revoke vouchers).
    "fraud.fraudcase": {"program_admin": {V}, "fraud_analyst": {V}},
    # Data-subject requests (PDPA): no compliance role exists, programme administrators
    # take and work them (the request page's buttons and the intake: DSR_VIEWS below).
    "compliance.datasubjectrequest": {"program_admin": {V}},
    # Fraud reports (store managers: their stores' alert counts only; fraud.reports).
    "fraud.fraudreport": {"store_manager": {V}, "program_admin": {V}, "fraud_analyst": {V}},
    # Headquarters' rationale audit (FRAUD.md row 10): the fraud team records verdicts.
    "fraud.auditsample": {"fraud_analyst": {V, "action:mark_passed", "action:mark_failed"}},
    # Fraud ruleset versions: read by the fraud team and programme administrators, who
    # approve a version after its replay (buttons of their own: RULESET_VIEWS below).
    "fraud.fraudruleset": {"program_admin": {V}, "fraud_analyst": {V}},
    "vouchers.pendingredemption": {
        "store_manager": {V, "action:approve_selected", "action:reject_selected"},
        "program_admin": {V, "action:approve_selected", "action:reject_selected"},
        "fraud_analyst": {V},
    },
    "vouchers.tillredemption": {"store_manager": {V}, "program_admin": {V}, "fraud_analyst": {V}},
    "loyalty.store": {
        "cashier": {V},
        "store_manager": {V},
        "program_admin": {V, A, C},
        "system_admin": {V, A, C},
        "fraud_analyst": {V},
    },
    "staffauth.staffuser": {"system_admin": {V, A, C, "action:end_sessions"}},
    # Members: looked up by every member-facing role; system administrators run the
    # system and have no need for member records.
    "members.member": {"cashier": {V}, "store_manager": {V}, "program_admin": {V}, "fraud_analyst": {V}},
    # The journal: store staff see their stores' operations; HQ roles read everything.
    "loyalty.ledgeroperation": {"cashier": {V}, "store_manager": {V}, "program_admin": {V}, "fraud_analyst": {V}},
    "loyalty.transfer": {"program_admin": {V}, "fraud_analyst": {V}},
    "loyalty.pointslot": {"program_admin": {V}, "fraud_analyst": {V}},
    "loyalty.account": {"program_admin": {V}, "fraud_analyst": {V}},
    # Tills: created by command; system administrators switch them off and set allow-lists.
    "loyalty.till": {"store_manager": {V}, "system_admin": {V, C}},
    # The daily adjustment report (store managers: their stores' rows) and the outbox.
    "loyalty.adjustmentreport": {"store_manager": {V}, "program_admin": {V}, "fraud_analyst": {V}},
    "loyalty.outboundmessage": {"program_admin": {V}, "system_admin": {V}},
    # Tamper-evident logs: the chains' status (read-only) for the system administrator.
    "compliance.chainhead": {"system_admin": {V}},
    # Retention (COMPLIANCE.md §2): runs read-only with their evidence; holds placed and released.
    "compliance.retentionrun": {"program_admin": {V}, "system_admin": {V}},
    "compliance.legalhold": {"program_admin": {V, A, C}, "system_admin": {V, A, C}},
    # Manual adjustments: requested (add) by store managers and programme administrators,
    # seen by the fraud team; never edited or deleted (decisions are buttons of their own).
    "loyalty.adjustmentrequest": {"store_manager": {V, A}, "program_admin": {V, A}, "fraud_analyst": {V}},
    "loyalty.adjustmentreason": {"program_admin": {V, A, C}},
    "auth.group": {"system_admin": {V}},
    "staffauth.securityevent": _LOGS,
    "members.memberpiiaccess": _LOGS,
    # The access log (compliance.access): read by those who read logs.
    "compliance.accessevent": _LOGS,
    "auditlog.logentry": _LOGS,
    "axes.accesslog": _LOGS,
    "axes.accessfailurelog": _LOGS,
    "axes.accessattempt": {
        "system_admin": {V, D, "action:unlock_selected", "action:cleanup_expired_attempts"},
        "fraud_analyst": {V},
    },
    "otp_totp.totpdevice": {"system_admin": {V, D, "action:delete_selected"}},
    "otp_static.staticdevice": {"system_admin": {V, D, "action:delete_selected"}},
    "django_celery_beat.periodictask": {
        "system_admin": ALL
        | {f"action:{a}" for a in ("delete_selected", "enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")}
    },
    "django_celery_beat.clockedschedule": {"system_admin": ALL | {"action:delete_selected"}},
    "django_celery_beat.crontabschedule": {"system_admin": ALL | {"action:delete_selected"}},
    "django_celery_beat.solarschedule": {"system_admin": ALL | {"action:delete_selected"}},
    "django_celery_beat.intervalschedule": {"system_admin": ALL | {"action:delete_selected"}},
    # Consumer protection (issue 15): complaints, filed (add) on a member's behalf and
    # worked (the page's buttons, COMPLAINT_ACTIONS below) by store managers (their
    # stores) and programme administrators; never edited or deleted. Terms versions:
    # drafted and published by programme administrators; never deleted.
    "compliance.complaint": {"store_manager": {V, A}, "program_admin": {V, A}},
    "compliance.termsversion": {"program_admin": {V, A, C}},
}

# The member page across stores (issue 11, D3; spec: "a cashier cannot view other
# stores' data", "a store manager cannot access headquarters data"). role -> the origins
# whose rows the role sees on the page of a member with activity at the role's own store
# (A), at another store (B) and at headquarters (HQ, no store): in the history panel,
# the lots panel and Django's change history (/history/). The consent history panel is
# shown exactly to the roles that see HQ rows. Roles not listed have no member page (403).
MEMBER_PAGE_ORIGINS: dict[str, set[str]] = {
    "cashier": {"A"},
    "store_manager": {"A"},
    "program_admin": {"A", "B", "HQ"},
    "fraud_analyst": {"A", "B", "HQ"},
}


@pytest.fixture
def sample_objects(staff_by_role, store_a):
    """One in-scope object per registered admin model."""
    cashier = staff_by_role["cashier"]
    now = timezone.now()
    member = Member.objects.create(home_store=store_a)
    till = Till.objects.create(store=store_a, code="T1", key_id="matrix-till", secret_encrypted="-")
    earned = points_earn(member=member, points=10, receipt_ref="M-1", actor=Actor(till=till), idempotency_key="m1")
    attempt = {
        "user_agent": "pytest",
        "ip_address": "10.0.0.1",
        "username": "someone",
        "http_accept": "*/*",
        "path_info": "/admin/login/",
    }
    static = StaticDevice.objects.create(user=cashier, name="Backup codes")
    reward = Reward.objects.create(name="Matrix mug", kind="free_item", item="Mug", points_price=100)
    voucher = voucher_goodwill_issue(
        staff=staff_by_role["program_admin"], member=member, reward=reward, reason="Matrix"
    )
    shift = StaffShift.objects.create(staff=cashier, store=store_a, till=till, started_at=now)
    held = points_hold(member=member, points=5, actor=Actor(till=till), idempotency_key="m-hold")
    at_the_till = {"till": till, "store": store_a, "staff": cashier, "member": member, "points": 5}
    objects = {
        "vouchers.staffshift": shift,
        "vouchers.tillredemption": TillRedemption.objects.create(
            **at_the_till,
            hold_operation=LedgerOperation.objects.get(pk=held.body["hold_id"]),
            shift=shift,
            idempotency_key="m-hold",
            created_at=now,
        ),  # fmt: skip
        "vouchers.pendingredemption": PendingRedemption.objects.create(
            **at_the_till, idempotency_key="m-offline", attempted_at=now
        ),
        "vouchers.voucherscan": VoucherScan.objects.create(
            voucher=voucher, store=store_a, till=till, staff=cashier, action="validate", result="ok"
        ),
        "vouchers.redemptionaudit": RedemptionAudit.objects.create(
            store=store_a,
            cashier=cashier,
            ledger_operation=LedgerOperation.objects.get(pk=earned.body["operation_id"]),
            points=10,
            sampled_at=now,
        ),
        "fraud.fraudalert": FraudAlert.objects.create(kind="matrix", store=store_a),
        "fraud.fraudcase": alert_raise(
            detector="devices_rapid_change",
            subjects=[Subject.member(member.pk)],
            facts={"devices": 3},
            occurred_at=now,
            dedupe_key="matrix-case",
            member_id=member.pk,
        ).cases[0],  # fmt: skip
        "compliance.datasubjectrequest": DataSubjectRequest.objects.create(
            kind="access",
            member=member,
            channel="staff",
            received_at=now,
            due_at=now + timedelta(days=21),
            state="identity_pending",
        ),  # fmt: skip
        "fraud.fraudreport": fraud_report_build(period="daily", day=now.date())[0],
        "fraud.fraudruleset": ruleset_current(),
        "vouchers.reward": reward,
        "vouchers.voucher": voucher,
        "loyalty.store": store_a,
        "staffauth.staffuser": cashier,
        "members.member": member,
        "loyalty.ledgeroperation": LedgerOperation.objects.get(pk=earned.body["operation_id"]),
        "loyalty.transfer": Transfer.objects.get(operation_id=earned.body["operation_id"]),
        "loyalty.pointslot": PointsLot.objects.get(),
        "loyalty.account": Account.objects.get(member=member),
        "loyalty.till": till,
        "loyalty.adjustmentreport": AdjustmentReport.objects.create(day=now.date()),
        "compliance.chainhead": ChainHead.objects.get_or_create(stream="security")[0],
        "loyalty.outboundmessage": OutboundMessage.objects.create(
            channel="email", to="hq@example.com", subject="Matrix", body="-", topic="test"
        ),
        "loyalty.adjustmentrequest": adjustment_request(
            actor=staff_by_role["store_manager"],
            member=member,
            points=600,
            reason=AdjustmentReason.objects.get(code="MISSED_EARN"),
            store=store_a,
            evidence=Evidence(
                justification="Receipt shown; the till was offline.",
                verification_method="phone",
                verified_by="A. Manager",
                verified_at=now,
                verification_outcome="Member confirmed.",
            ),
        ),
        "loyalty.adjustmentreason": AdjustmentReason.objects.get(code="MISSED_EARN"),
        "compliance.retentionrun": RetentionRun.objects.create(dry_run=True, started_by="matrix", policy={}),
        "compliance.legalhold": LegalHold.objects.create(
            scope="member", member=member, reason="matrix", placed_by=staff_by_role["system_admin"]
        ),
        "auth.group": Group.objects.get(name="Cashier"),
        "staffauth.securityevent": SecurityEvent.objects.create(kind=SecurityEvent.Kind.LOGIN_FAILED, username="x"),
        "members.memberpiiaccess": MemberPiiAccess.objects.create(member=member, staff=cashier, field="phone"),
        "compliance.accessevent": access_record("member_view", staff=cashier, member_id=member.pk, obj=member),
        "auditlog.logentry": LogEntry.objects.get_for_object(store_a).first(),
        "axes.accessattempt": AccessAttempt.objects.create(
            **attempt, get_data="", post_data="", failures_since_start=1
        ),
        "axes.accesslog": AccessLog.objects.create(**attempt, attempt_time=now),
        "axes.accessfailurelog": AccessFailureLog.objects.create(**attempt, attempt_time=now, locked_out=False),
        "otp_totp.totpdevice": TOTPDevice.objects.get(user=cashier),
        "otp_static.staticdevice": static,
        "django_celery_beat.periodictask": PeriodicTask.objects.first(),
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(clocked_time=now),
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.first(),
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=3.1, longitude=101.7
        ),
        "django_celery_beat.intervalschedule": IntervalSchedule.objects.create(every=5, period="minutes"),
        "compliance.complaint": complaint_file(
            member=member,
            kind="service",
            subject="M",
            body="-",
            store_id=store_a.pk,
            actor=staff_by_role["program_admin"],
        ),
        "compliance.termsversion": terms_draft_save(
            actor=staff_by_role["program_admin"], title="Matrix", body="-", effective_from=now
        ),
    }
    objects["fraud.auditsample"] = AuditSample.objects.create(
        month=now.date().replace(day=1), adjustment=objects["loyalty.adjustmentrequest"], band="supervisor",
        staff=staff_by_role["store_manager"], draw_hash="0" * 64, drawn_at=now,
    )  # fmt: skip
    return objects


# --- The till API's member look-up (issue 11, D7) ------------------------------------------------
#
# Route -> principal -> status. The till API answers only a till's signature: a staff
# session (any role) or a member's token is no credential there (401). Members are
# programme-wide, so a till of any active store may look one up. The retired path form
# answers 410 to everybody and reads nothing.
TILL_PRINCIPALS = ["anonymous", *ROLES, "member", "till_store_a", "till_store_b"]
_TILL_ONLY = dict.fromkeys(TILL_PRINCIPALS, 401) | {"till_store_a": 200, "till_store_b": 200}
TILL_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/api/v1/pos/members/balance"): _TILL_ONLY,
    ("GET", "/api/v1/pos/members/{loyalty_number}/balance"): dict.fromkeys(TILL_PRINCIPALS, 410),
    ("POST", "/api/v1/pos/members/{loyalty_number}/balance"): dict.fromkeys(TILL_PRINCIPALS, 410),
}


def test_the_till_member_look_up_rows(staff_by_role, store_a, store_b):
    from members.services.sessions import session_start
    from tests.loyalty.api.conftest import TillClient, make_till

    member = Member.objects.create(home_store=store_a)
    token = session_start(member=member, channel="app", device_fingerprint="matrix-device").access_token
    tills = {"till_store_a": make_till(store_a, "MX-A"), "till_store_b": make_till(store_b, "MX-B")}

    def send(principal: str, method: str, path: str):
        body = {"loyalty_number": member.loyalty_number}
        if principal in tills:
            till = tills[principal]
            return TillClient(Client(), till, till.plain_secret).request(method, path, body, key=None)
        client = Client()
        headers = {}
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        elif principal == "member":
            headers["Authorization"] = f"Bearer {token}"
        return client.generic(method, path, json.dumps(body), content_type="application/json", headers=headers)

    mismatches, cells = [], 0
    for (method, route), expected in TILL_ROUTES.items():
        assert set(expected) == set(TILL_PRINCIPALS), route
        path = route.format(loyalty_number=member.loyalty_number)
        for principal in TILL_PRINCIPALS:
            status = send(principal, method, path).status_code
            cells += 1
            if status != expected[principal]:
                mismatches.append(f"{principal} {method} {route}: expected {expected[principal]}, got {status}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, "\n".join(mismatches)


def registered_labels() -> set[str]:
    return {model._meta.label_lower for model in admin.site._registry}


def test_every_registered_admin_model_is_in_the_table():
    assert registered_labels() == set(MATRIX), "update MATRIX to the spec for new or removed admin models"


def _url(label: str, view: str, obj=None) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_{view}", args=[obj.pk] if obj is not None else [])


def observe(client: Client, label: str, obj) -> set[str]:
    """What the admin actually lets this client do with ``label``."""
    allowed = set()
    changelist = client.get(_url(label, "changelist"))
    if changelist.status_code == 200:
        allowed.add(V)
        action_form = changelist.context_data.get("action_form")
        if action_form is not None:
            allowed |= {f"action:{name}" for name, _ in action_form.fields["action"].choices if name}
    else:
        assert changelist.status_code == 403, (label, changelist.status_code)
    if client.get(_url(label, "add")).status_code == 200:
        allowed.add(A)
    change = client.get(_url(label, "change", obj))
    assert change.status_code in (200, 403), (label, change.status_code)
    if change.status_code == 200 and change.context_data["has_change_permission"]:
        allowed.add(C)
    elif change.status_code == 200:
        allowed.add(V)  # a read-only change view is viewing
    if client.get(_url(label, "delete", obj)).status_code == 200:
        allowed.add(D)
    return allowed


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(role, staff_by_role, sample_objects):
    client = login_verified(Client(), staff_by_role[role])
    mismatches = []
    cells = 0
    for label in sorted(MATRIX):
        expected = MATRIX[label].get(role, set())
        actual = observe(client, label, sample_objects[label])
        known_actions = {op for rows in MATRIX[label].values() for op in rows if op.startswith("action:")}
        unknown = {op for op in actual if op.startswith("action:")} - known_actions
        assert not unknown, f"{label}: actions missing from MATRIX: {unknown}"
        cells += 4 + len(known_actions)
        if actual != expected:
            mismatches.append(f"{label}: expected {sorted(expected)}, got {sorted(actual)}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, f"{role}:\n" + "\n".join(mismatches)


# The case page's buttons (POST <case>/act/<action>/) and evidence files: role -> what
# happens. "done": the action is recorded; "refused": the service refuses it (the page
# says why; nothing recorded); 403: the role has no case pages at all.
CASE_ACTIONS: dict[str, dict[str, object]] = {
    action: {"cashier": 403, "store_manager": 403, "system_admin": 403, "program_admin": "refused", "fraud_analyst": "done"}
    for action in (
        "assign_me", "start", "snooze", "note", "contain", "recommend_suspension", "draft_reversal", "close",
    )
}  # fmt: skip
CASE_ACTION_DATA = {
    "snooze": {"days": "2", "reason": "matrix"},
    "note": {"reason": "matrix"},
    "recommend_suspension": {"reason": "matrix"},
    "draft_reversal": {"points": "10", "reason": "matrix"},
    "close": {"outcome": "inconclusive", "resolution_reason": "insufficient_evidence", "reason": "matrix"},
}


@pytest.mark.parametrize("role", ROLES)
def test_the_case_actions_rows(role, staff_by_role, sample_objects):
    case = sample_objects["fraud.fraudcase"]
    client = login_verified(Client(), staff_by_role[role])
    mismatches = []
    for action, expected_by_role in CASE_ACTIONS.items():
        expected = expected_by_role[role]
        before = CaseEvent.objects.filter(case=case).count()
        url = reverse("admin:fraud_fraudcase_act", args=[case.pk, action])
        response = client.post(url, CASE_ACTION_DATA.get(action, {}))
        after = CaseEvent.objects.filter(case=case).count()
        if response.status_code == 302:
            refused = any("Refused" in str(m) for m in response.wsgi_request._messages)
            actual: object = "refused" if refused else "done"
            if actual == "refused" and after != before:
                actual = "refused but recorded"
        else:
            actual = response.status_code
        if actual != expected:
            mismatches.append(f"{action}: expected {expected}, got {actual}")
    if role != "fraud_analyst":
        assert FraudCase.objects.get(pk=case.pk).status != FraudCase.Status.CLOSED
    add_figure("authorization matrix cells checked", len(CASE_ACTIONS))
    assert not mismatches, f"{role}:\n" + "\n".join(mismatches)


# The ruleset version page's buttons (POST <version>/replay/, <version>/approve/): "done"
# (the replay is stored; the version approved), "refused" (the service refuses: the page
# says why, nothing recorded), 403 (no ruleset pages), "login" (anonymous).
RULESET_PRINCIPALS = ["anonymous", *ROLES]
RULESET_VIEWS: dict[str, dict[str, object]] = {
    "fraud_fraudruleset_replay": {
        "anonymous": "login", "cashier": 403, "store_manager": 403, "system_admin": 403,
        "program_admin": "done", "fraud_analyst": "done",
    },
    "fraud_fraudruleset_approve": {
        "anonymous": "login", "cashier": 403, "store_manager": 403, "system_admin": 403,
        "program_admin": "done", "fraud_analyst": "refused",
    },
}  # fmt: skip


def test_the_ruleset_buttons_rows(staff_by_role, settings):
    from fraud.models import FraudRuleset
    from fraud.replay import ruleset_replay_version

    mismatches, cells = [], 0
    for number, (view, principal) in enumerate((v, p) for v in RULESET_VIEWS for p in RULESET_PRINCIPALS):
        expected = RULESET_VIEWS[view]
        assert set(expected) == set(RULESET_PRINCIPALS), view
        # A pending version of its own for each cell (an approval is for good).
        with override_settings(FRAUD={**settings.FRAUD, "storm_alerts_per_hour": 1000 + number}):
            ruleset = ruleset_current()
        if view.endswith("approve"):
            ruleset_replay_version(ruleset=ruleset)
        client = Client()
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        response = client.post(reverse(f"admin:{view}", args=[ruleset.pk]))
        after = FraudRuleset.objects.get(pk=ruleset.pk)
        if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
            actual: object = "login"
        elif response.status_code == 302:
            refused = any("Refused" in str(m) for m in response.wsgi_request._messages)
            changed = after.approved if view.endswith("approve") else after.replayed_at is not None
            actual = "refused" if refused and not changed else "done" if changed and not refused else "?"
        else:
            actual = response.status_code
        cells += 1
        if actual != expected[principal]:
            mismatches.append(f"{principal} {view}: expected {expected[principal]}, got {actual}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, "\n".join(mismatches)


# The case page's "lower the outcome" button on a member whose outcome in force is
# step_up: the fraud team lowers it; programme administrators read cases but may not.
LOWER_OUTCOME_ROW: dict[str, object] = {
    "cashier": 403, "store_manager": 403, "system_admin": 403, "program_admin": "refused", "fraud_analyst": "done",
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_the_lower_outcome_row(role, staff_by_role, store_a):
    from fraud.outcomes import outcome_in_force, subject_decide_apply

    member = Member.objects.create(home_store=store_a)
    subject = Subject.member(member.pk)
    signal_raise(detector="test_outcome", subject=subject, facts={"n": 1}, occurred_at=timezone.now(),
                 dedupe_key="matrix-outcome", weight=65)  # fmt: skip
    case = subject_decide_apply(subject).case
    client = login_verified(Client(), staff_by_role[role])

    response = client.post(
        reverse("admin:fraud_fraudcase_act", args=[case.pk, "lower_outcome"]), {"to": "review", "reason": "matrix"}
    )

    if response.status_code == 302:
        refused = any("Refused" in str(m) for m in response.wsgi_request._messages)
        actual: object = "refused" if refused else "done"
    else:
        actual = response.status_code
    add_figure("authorization matrix cells checked", 1)
    assert actual == LOWER_OUTCOME_ROW[role]
    assert outcome_in_force(subject) == ("review" if actual == "done" else "step_up")


def test_anonymous_is_sent_to_login_everywhere(client, sample_objects):
    cells = 0
    for label in sorted(MATRIX):
        obj = sample_objects[label]
        for url in (
            _url(label, "changelist"),
            _url(label, "add"),
            _url(label, "change", obj),
            _url(label, "delete", obj),
        ):
            response = client.get(url)
            assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
            cells += 1
    add_figure("authorization matrix cells checked", cells)


def test_the_member_page_table_agrees_with_the_matrix():
    assert set(MEMBER_PAGE_ORIGINS) == {role for role, ops in MATRIX["members.member"].items() if V in ops}


@pytest.mark.parametrize("role", ROLES)
def test_member_page_panels_across_stores(role, staff_by_role, store_a, store_b, make_staff):
    cross = cross_store.cross_store_member_make(
        store_a=store_a, store_b=store_b, make_staff=make_staff, program_admin=staff_by_role["program_admin"]
    )
    client = login_verified(Client(), staff_by_role[role])

    page, changes = client.get(cross_store.page_url(cross.member)), client.get(cross_store.history_url(cross.member))

    expected = MEMBER_PAGE_ORIGINS.get(role)
    add_figure("authorization matrix cells checked", 4)
    if expected is None:
        assert (page.status_code, changes.status_code) == (403, 403)
        return
    assert (page.status_code, changes.status_code) == (200, 200)
    body, history = page.content.decode(), changes.content.decode()
    observed = {
        "history panel": cross_store.origins_shown(cross_store.panel(body, "history"), cross_store.OPERATIONS),
        "lots panel": cross_store.origins_shown(cross_store.panel(body, "lots"), cross_store.LOTS),
        "change history": {origin for origin, message in cross_store.CHANGES.items() if message in history},
    }
    assert observed == dict.fromkeys(observed, expected), role
    assert ("field-consent_history" in body) == ("HQ" in expected), role


# --- The member admin's own views (issue 11, D7) ------------------------------------------------
#
# View -> principal -> outcome, for the POST-only views the member admin adds to its
# model's URLs: the search box (any role that may view members; the answer is a redirect
# to the changelist with the saved search's token) and the reveal of one personal-data
# field (members.reveal_member_pii: programme administrators only). Anonymous users are
# sent to the login page. "login" and "searched" are redirects; numbers are statuses.
MEMBER_ADMIN_PRINCIPALS = ["anonymous", *ROLES]
MEMBER_ADMIN_VIEWS: dict[str, dict[str, str | int]] = {
    "members_member_search": {
        "anonymous": "login",
        "cashier": "searched",
        "store_manager": "searched",
        "program_admin": "searched",
        "system_admin": 403,
        "fraud_analyst": "searched",
    },
    "members_member_reveal": {
        "anonymous": "login",
        "cashier": 403,
        "store_manager": 403,
        "program_admin": 200,
        "system_admin": 403,
        "fraud_analyst": 403,
    },
}


def test_the_member_admin_views_rows(staff_by_role, store_a):
    from members.services.membership import member_create

    member = member_create(home_store=store_a, phone="+60 12-555 0177")
    requests = {
        "members_member_search": (reverse("admin:members_member_search"), {"q": "+60 12-555 0177"}),
        "members_member_reveal": (reverse("admin:members_member_reveal", args=[member.pk]), {"field": "phone"}),
    }
    changelist = reverse("admin:members_member_changelist")

    def outcome(response) -> str | int:
        if response.status_code != 302:
            return response.status_code
        if response["Location"].startswith("/admin/login/"):
            return "login"
        return "searched" if response["Location"].startswith(f"{changelist}?s=") else response["Location"]

    mismatches, cells = [], 0
    for view, expected in MEMBER_ADMIN_VIEWS.items():
        assert set(expected) == set(MEMBER_ADMIN_PRINCIPALS), view
        url, body = requests[view]
        for principal in MEMBER_ADMIN_PRINCIPALS:
            client = Client()
            if principal in staff_by_role:
                login_verified(client, staff_by_role[principal])
            got = outcome(client.post(url, body))
            cells += 1
            if got != expected[principal]:
                mismatches.append(f"{principal} {view}: expected {expected[principal]}, got {got}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, "\n".join(mismatches)


# Data-subject requests: the intake page and each action on the request page.
DSR_VIEWS = {"program_admin": (200, "done")}


@pytest.mark.parametrize("role", ROLES)
def test_the_data_request_rows(role, staff_by_role, sample_objects):
    request = sample_objects["compliance.datasubjectrequest"]
    client = login_verified(Client(), staff_by_role[role])
    intake_status, action_outcome = DSR_VIEWS.get(role, (403, "refused"))
    assert client.get(reverse("admin:compliance_datasubjectrequest_intake")).status_code == intake_status
    url = reverse("admin:compliance_datasubjectrequest_act", args=[request.pk, "verify"])
    response = client.post(url, {"identity_check": "callback", "reason": "matrix"})
    request.refresh_from_db()
    outcome = "done" if request.state == "verified" else "refused"
    assert outcome == action_outcome, (role, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_the_data_request_correct_action_row(role, staff_by_role, sample_objects):
    """The request page's ``correct`` action (a name or birth date, through the members'
    PII service): programme administrators only."""
    from members.services.pii import member_pii_read

    member = sample_objects["compliance.datasubjectrequest"].member
    now = timezone.now()
    request = DataSubjectRequest.objects.create(
        kind="correction", member=member, channel="staff", received_at=now, due_at=now + timedelta(days=21),
        state="in_progress", identity_check="callback", identity_verified_at=now,
    )  # fmt: skip
    client = login_verified(Client(), staff_by_role[role])
    url = reverse("admin:compliance_datasubjectrequest_act", args=[request.pk, "correct"])
    client.post(url, {"field": "name", "value": "Matrix Corrected", "reason": "matrix"})
    outcome = "done" if member_pii_read(Member.objects.get(pk=member.pk)).name == "Matrix Corrected" else "refused"
    assert outcome == DSR_VIEWS.get(role, (403, "refused"))[1], role


# The voucher admin's search box posts too (a voucher code is a bearer credential): the
# roles that may view vouchers get the redirect to their saved search; others 403.
# The posted searches (staffauth.posted_search): who may search, with a term of the kind
# each admin takes (a voucher code; a case reference).
POSTED_SEARCH_ROWS: dict[str, tuple[str, dict[str, str | int]]] = {
    "vouchers_voucher": (
        "ABCD-EFGH-JKMN-PQRS",
        {"anonymous": "login", "cashier": 403, "store_manager": "searched", "program_admin": "searched",
         "system_admin": 403, "fraud_analyst": "searched"},
    ),
    "fraud_fraudcase": (
        "FC-2026-000001",
        {"anonymous": "login", "cashier": 403, "store_manager": 403, "program_admin": "searched",
         "system_admin": 403, "fraud_analyst": "searched"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("admin_name", sorted(POSTED_SEARCH_ROWS))
def test_the_posted_search_rows(staff_by_role, admin_name):
    term, row = POSTED_SEARCH_ROWS[admin_name]
    url = reverse(f"admin:{admin_name}_search")
    changelist = reverse(f"admin:{admin_name}_changelist")
    assert set(row) == set(MEMBER_ADMIN_PRINCIPALS)
    mismatches = []
    for principal, expected in row.items():
        client = Client()
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        response = client.post(url, {"q": term})
        got: str | int = response.status_code
        if response.status_code == 302:
            location = response["Location"]
            got = "login" if location.startswith("/admin/login/") else (
                "searched" if location.startswith(f"{changelist}?s=") else location
            )  # fmt: skip
        if got != expected:
            mismatches.append(f"{principal}: expected {expected}, got {got}")
    add_figure("authorization matrix cells checked", len(row))
    assert not mismatches, "\n".join(mismatches)


# The complaint page's buttons (POST <complaint>/act/<action>/) on a complaint of store A:
# "done", 403 (no complaint pages; another store's complaint answers 404 like a missing
# one), "login" (anonymous). The terms publish button: "done" or 403.
COMPLAINT_ACTIONS: dict[str, object] = {
    "anonymous": "login", "cashier": 403, "store_manager": "done", "program_admin": "done",
    "system_admin": 403, "fraud_analyst": 403,
}  # fmt: skip
TERMS_PUBLISH: dict[str, object] = {
    "anonymous": "login", "cashier": 403, "store_manager": 403, "program_admin": "done",
    "system_admin": 403, "fraud_analyst": 403,
}  # fmt: skip


def _outcome(response, done: bool) -> object:
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        return "login"
    if response.status_code == 302:
        return "done" if done else "?"
    return response.status_code


def test_the_complaint_and_terms_buttons_rows(staff_by_role, store_a):
    from compliance.models import TermsVersion

    member = Member.objects.create(home_store=store_a)
    admin_user = staff_by_role["program_admin"]
    mismatches = []
    for principal, expected in COMPLAINT_ACTIONS.items():
        complaint = complaint_file(
            member=member, kind="service", subject="Row", body="-", store_id=store_a.pk, actor=admin_user
        )
        client = Client()
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        url = reverse("admin:compliance_complaint_act", args=[complaint.pk, "respond"])
        response = client.post(url, {"text": "Hi"})
        complaint.refresh_from_db()
        actual = _outcome(response, complaint.state == "responded")
        if actual != expected:
            mismatches.append(f"{principal} complaint respond: expected {expected}, got {actual}")
    for principal, expected in TERMS_PUBLISH.items():
        draft = terms_draft_save(actor=admin_user, title="Row", body="-", effective_from=timezone.now())
        client = Client()
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        url = reverse("admin:compliance_termsversion_publish", args=[draft.pk])
        response = client.post(url, {"confirm": f"v{draft.version}"})
        actual = _outcome(response, TermsVersion.objects.get(pk=draft.pk).is_published)
        if actual != expected:
            mismatches.append(f"{principal} terms publish: expected {expected}, got {actual}")
    add_figure("authorization matrix cells checked", len(COMPLAINT_ACTIONS) + len(TERMS_PUBLISH))
    assert not mismatches, "\n".join(mismatches)


# The compliance dashboard (GET /admin/compliance/dashboard/; compliance.admin.dashboard):
# principal -> status, and the sections each role sees. A section shows iff the role holds
# its view permission (requests: programme administrators; chains: system administrators;
# retention runs and holds: both; complaints: those who handle them, store managers at
# their stores); a role holding none gets 403, anonymous users the login page. POST is
# refused (read-only page).
COMPLIANCE_DASHBOARD: dict[str, tuple[object, set[str]]] = {
    "anonymous": ("login", set()),
    "cashier": (403, set()),
    "store_manager": (200, {"complaints"}),
    "program_admin": (200, {"requests", "complaints", "runs", "holds"}),
    "system_admin": (200, {"chains", "runs", "holds"}),
    "fraud_analyst": (403, set()),
}


def test_the_compliance_dashboard_rows(staff_by_role, sample_objects):
    url = reverse("admin:compliance_dashboard")
    assert set(COMPLIANCE_DASHBOARD) == set(MEMBER_ADMIN_PRINCIPALS)
    mismatches, cells = [], 0
    for principal, (expected, sections) in COMPLIANCE_DASHBOARD.items():
        client = Client()
        if principal in staff_by_role:
            login_verified(client, staff_by_role[principal])
        response = client.get(url)
        got: object = response.status_code
        if got == 302 and response["Location"].startswith("/admin/login/"):
            got = "login"
        shown = set(re.findall(r'class="compliance-section" id="compliance-(\w+)"', response.content.decode()))
        posted = client.post(url, {}).status_code
        cells += 2
        if (got, shown) != (expected, sections):
            mismatches.append(f"{principal}: expected {expected} {sorted(sections)}, got {got} {sorted(shown)}")
        if posted not in (302, 403, 405) or (posted == 302 and principal != "anonymous"):
            mismatches.append(f"{principal}: POST answered {posted}")
    add_figure("authorization matrix cells checked", cells)
    assert not mismatches, "\n".join(mismatches)

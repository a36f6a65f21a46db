"""The fraud score's step-up over HTTP (FRAUD.md §2 "step_up", §3 "Proving identity";
``fraud.outcomes`` and ``members.services.restrictions``): a member whose live outcome is
``step_up`` is refused ``step_up_required`` on their next redemption (a voucher bought
with points, a till redemption confirmed in the app) or contact change until they verify
an SMS step-up, which lifts it; the code a till's redemption texts them lifts it too; a
number too new to prove who they are needs an identity check in store."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from fraud.models import FraudCase
from fraud.outcomes import outcome_in_force, subject_decide_apply
from fraud.scoring import Subject, signal_raise
from members.models import Member, MemberRestriction, MemberSecurityEvent
from members.services.contact import ContactRefused, contact_change_start
from members.services.pii import member_pii_read
from tests.member_client import member_client
from tests.vouchers.till_api_helpers import app_confirm, error, hold
from tests.vouchers.till_helpers import sms_code
from vouchers.services.till_controls import TillPointsRefused

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("limits_off", "sms_outbox")]


def settled(member: Member) -> Member:
    """A member of 60 days whose number has not changed since: an SMS code proves who they are."""
    Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - timedelta(days=60))
    member.refresh_from_db()
    return member


def fraud_step_up(member: Member, key: str = "fraud-step-up") -> FraudCase:
    """A signal scoring 65 and the member decided: the step_up outcome applied."""
    subject = Subject.member(member.pk)
    signal_raise(
        detector="test_outcome", subject=subject, facts={"n": 1}, occurred_at=timezone.now(), dedupe_key=key,
        weight=65,
    )  # fmt: skip
    assert subject_decide_apply(subject).outcome_after == "step_up"
    return FraudCase.objects.get(subject_key=subject.key)


def purchase(api, reward_id, key="key-1"):
    return api.post("/api/v1/me/vouchers", {"reward_id": reward_id}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def api_step_up(sms_outbox, django_capture_on_commit_callbacks):
    """Ask for a step-up code for ``action`` and verify it, through the API, as the member would."""

    def verify(api, action="redeem"):
        with django_capture_on_commit_callbacks(execute=True):
            asked = api.post("/api/v1/me/step-up", {"action": action}, format="json")
        assert asked.status_code == 202, asked.content
        code = re.search(r"\b(\d{6})\b", sms_outbox[-1]["text"]).group(1)
        body = {"challenge_id": asked.json()["challenge_id"], "code": code, "action": action}
        verified = api.post("/api/v1/me/step-up/verify", body, format="json")
        assert verified.status_code == 200, verified.content

    return verify


# --- a voucher bought with points -----------------------------------------------------------------


def test_a_step_up_required_member_is_refused_then_buys_after_a_step_up(member_with_phone, give, reward, api_step_up):
    member = settled(member_with_phone)
    give(member, 1000)
    case = fraud_step_up(member)
    api = member_client(member)

    refused = purchase(api, reward.pk)

    assert (refused.status_code, error(refused)) == (403, "step_up_required")
    assert refused.json()["error"]["detail"]["actions"] == ["redeem"]
    told = api.get("/api/v1/me/restriction").json()
    assert (told["restriction"], told["next_step"], told["case_reference"]) == (
        "step_up_required", "sms_code", case.reference,
    )  # fmt: skip

    api_step_up(api)
    bought = purchase(api, reward.pk)

    assert bought.status_code == 201, bought.content
    assert api.get("/api/v1/me/restriction").json() == {"restriction": None}
    lifted = MemberRestriction.objects.get(member=member, kind="step_up")
    assert (lifted.lift_reason, lifted.lifted_by) == ("step_up_passed", None)
    assert MemberSecurityEvent.objects.filter(member=member, kind="step_up_passed").count() == 1
    assert outcome_in_force(Subject.member(member.pk)) == "review"
    assert purchase(api, reward.pk, key="key-2").status_code == 201  # passed: the next one asks nothing


def test_a_step_up_verified_before_the_requirement_does_not_pass_it(member_with_phone, give, reward, api_step_up):
    member = settled(member_with_phone)
    give(member, 1000)
    api = member_client(member)
    api_step_up(api)  # verified, unused
    fraud_step_up(member)

    refused = purchase(api, reward.pk)

    assert (refused.status_code, error(refused)) == (403, "step_up_required")
    api_step_up(api)
    assert purchase(api, reward.pk).status_code == 201


def test_a_number_too_new_to_prove_anything_needs_the_store(member_with_phone, give, reward, api_step_up):
    member = member_with_phone  # enrolled today: the number is not 30 days old
    give(member, 1000)
    case = fraud_step_up(member)
    api = member_client(member)

    api_step_up(api)  # verifies, but proves nothing about who holds the number
    refused = purchase(api, reward.pk)

    assert (refused.status_code, error(refused)) == (403, "account_restricted")
    detail = refused.json()["error"]["detail"]
    assert (detail["restriction"], detail["next_step"], detail["case_reference"]) == (
        "step_up_required", "in_store_id", case.reference,
    )  # fmt: skip
    assert MemberRestriction.objects.filter(member=member, kind="step_up", lifted_at__isnull=True).exists()


# --- a contact change -----------------------------------------------------------------------------


def test_a_contact_change_asks_for_a_step_up_since_the_requirement(member_with_phone, api_step_up):
    member = settled(member_with_phone)
    api = member_client(member)
    api_step_up(api, "change_email")  # before the requirement
    fraud_step_up(member)

    with pytest.raises(ContactRefused) as refused:
        contact_change_start(member=member, kind="email", value="new.address@example.com")
    assert refused.value.code == "step_up_required"

    api_step_up(api, "change_email")
    started = contact_change_start(member=member, kind="email", value="new.address@example.com")
    assert started.verification.kind == "email"


# --- at the till ----------------------------------------------------------------------------------


@pytest.fixture
def till_member(shopper):
    return settled(shopper)


@pytest.mark.usefixtures("till_settings")
def test_a_till_redemption_confirmed_in_the_app_asks_for_the_step_up(pos, till_member, api_step_up):
    fraud_step_up(till_member)
    hold_id = hold(pos, till_member, 300).json()["hold_id"]

    with pytest.raises(TillPointsRefused) as refused:
        app_confirm(till_member, hold_id)
    assert refused.value.code == "step_up_required" and refused.value.facts == {"actions": ["redeem"]}

    api_step_up(member_client(till_member))
    assert app_confirm(till_member, hold_id).authorised_via == "app"


@pytest.mark.usefixtures("till_settings")
def test_the_code_a_till_redemption_texts_passes_the_step_up(pos, till_member, django_capture_on_commit_callbacks):
    fraud_step_up(till_member)
    with django_capture_on_commit_callbacks(execute=True):
        body = hold(pos, till_member, 300).json()

    response = pos.post(
        f"redemptions/{body['hold_id']}/authorise",
        {"challenge_id": body["authorisation"]["challenge_id"], "code": sms_code()},
    )

    assert response.status_code == 200, response.content
    assert not MemberRestriction.objects.filter(member=till_member, kind="step_up", lifted_at__isnull=True).exists()
    assert (
        MemberSecurityEvent.objects.get(member=till_member, kind="step_up_passed")
        .detail["action"]
        .startswith("pos_redeem:")
    )


@pytest.mark.usefixtures("till_settings")
def test_a_till_cannot_hold_for_a_member_only_the_store_can_clear(pos, shopper):
    fraud_step_up(shopper)  # enrolled today: no SMS code proves who they are
    response = hold(pos, shopper, 300)
    assert (response.status_code, error(response)) == (403, "account_restricted")
    assert response.json()["error"]["detail"]["next_step"] == "in_store_id"


def test_the_member_is_told_without_the_reason(member_with_phone):
    member = settled(member_with_phone)
    fraud_step_up(member)
    body = member_client(member).get("/api/v1/me/restriction").json()
    assert "score" not in str(body).lower() and member_pii_read(member).phone not in str(body)

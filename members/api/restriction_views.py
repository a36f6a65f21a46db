"""A restricted member's way back (FRAUD.md §3 "Proving identity"): ``/api/v1/me/restriction``.

A member the fraud score asks to step up (``step_up_required``) is told so here: a
step-up code verified at ``me/step-up`` passes it (``next_step`` ``sms_code``), or, when
their number is too new to prove who they are, an identity document in store.

A member whose spending is frozen still signs in and earns; ``GET me/restriction`` says
whether anything is restricted, the case reference and what to do (never why). Where
the freeze is low risk (``members.services.standing.otp_lift_allowed``), the member
proves who they are with a step-up code for ``restriction_lift`` (``me/step-up``) and
``POST me/restriction/lift`` lifts it. Locked and suspended members cannot sign in at
all: their token and sign-in answer 403 ``account_restricted`` with the same detail, and
the way back is an identity document in store.
"""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from members.api.base import MeApi, member_operation
from members.models import Member
from members.services.restrictions import member_spend_unfreeze_by_step_up
from members.services.standing import restriction_notice, step_up_demand


@extend_schema_serializer(component_name="MeRestriction")
class RestrictionSerializer(serializers.Serializer):
    restriction = serializers.CharField(
        allow_null=True,
        help_text="spending_frozen, step_up_required (an SMS step-up before the next redemption or contact "
        "change), or null when nothing is restricted.",
    )
    case_reference = serializers.CharField(required=False, help_text="The fraud case's reference, to quote.")
    next_step = serializers.CharField(
        required=False,
        help_text="in_store_id; sms_code_or_in_store_id (then me/restriction/lift); sms_code (verify a step-up "
        "code, me/step-up, before the next redemption or contact change).",
    )
    next_step_message = serializers.CharField(required=False)


def _notice(member: Member) -> dict:
    frozen = member.spend_frozen_until is not None and member.spend_frozen_until > timezone.now()
    return restriction_notice(member) if frozen or step_up_demand(member) else {"restriction": None}


class MeRestrictionApi(MeApi):
    @member_operation("me_restriction", RestrictionSerializer)
    def get(self, request):
        member = Member.objects.get(pk=self.member.pk)
        return Response(RestrictionSerializer(_notice(member)).data)


class MeRestrictionLiftApi(MeApi):
    @member_operation(
        "me_restriction_lift",
        RestrictionSerializer,
        request=None,
        errors={
            403: "lift_not_allowed: prove who you are in store; step_up_required: verify a code for restriction_lift",
            409: "not_restricted: nothing to lift",
        },
    )
    def post(self, request):
        member_spend_unfreeze_by_step_up(member=self.member)  # a RestrictionRefused answers itself
        member = Member.objects.get(pk=self.member.pk)
        return Response(RestrictionSerializer(_notice(member)).data)


urlpatterns = [
    path("me/restriction", MeRestrictionApi.as_view(), name="me-restriction"),
    path("me/restriction/lift", MeRestrictionLiftApi.as_view(), name="me-restriction-lift"),
]

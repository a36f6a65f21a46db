"""Manual adjustments in the admin: the approval queue, the request form, the request
page and its decision buttons, the document download, the index count.

The rules are the services' (tests/loyalty/test_adjustments.py); these tests check
that the admin shows each user exactly what the services allow, and that every
button's URL re-checks on the server (forged and CSRF-less posts change nothing).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from loyalty.adjustments.models import AdjustmentEvent, AdjustmentReason, AdjustmentRequest
from loyalty.ledger.models import LedgerOperation
from tests.conftest import login_verified
from tests.db import rewriting_history
from tests.loyalty.conftest import PDF

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("velocity_off")]

QUEUE = reverse("admin:loyalty_adjustmentrequest_changelist")
ADD = reverse("admin:loyalty_adjustmentrequest_add")


def page_url(request) -> str:
    return reverse("admin:loyalty_adjustmentrequest_change", args=[request.pk])


def step_url(request, step: str) -> str:
    return reverse(f"admin:loyalty_adjustmentrequest_{step}", args=[request.pk])


@pytest.fixture
def requests(raise_request, store_b):
    """Supervisor-band requests in store A (by its manager) and in store B (by a programme
    administrator), and a headquarters one (by the same programme administrator)."""
    return {
        "a": raise_request(800),
        "b": raise_request(900, by="program_admin", store=store_b),
        "hq": raise_request(2_500, by="program_admin", store=None),
    }


@pytest.fixture
def as_user(staff):
    def client_for(who: str) -> Client:
        return login_verified(Client(), staff[who])

    return client_for


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {obj.pk for obj in response.context_data["cl"].result_list}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def no_adjustment_posted() -> bool:
    return not LedgerOperation.objects.filter(kind="adjust").exists()


# --- The queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "sees", "awaits"),
    [
        ("store_manager", {"a"}, set()),  # their own request: theirs to see, not to decide
        ("manager_2", {"a"}, {"a"}),
        ("manager_b", {"b"}, {"b"}),
        ("program_admin", {"a", "b", "hq"}, {"a"}),  # raised the other two
        ("program_admin_2", {"a", "b", "hq"}, {"a", "b", "hq"}),
        ("fraud_analyst", {"a", "b", "hq"}, {"hq"}),  # reviews large ones only
    ],
)
def test_the_queue_shows_each_role_what_it_may_see_and_act_on(as_user, requests, who, sees, awaits):
    client = as_user(who)
    assert listed(client.get(QUEUE)) == {requests[k].pk for k in sees}
    assert listed(client.get(QUEUE, {"awaiting": "me"})) == {requests[k].pk for k in awaits}


@pytest.mark.parametrize("who", ["cashier", "system_admin"])
def test_roles_without_adjustments_do_not_see_the_queue(as_user, requests, who):
    client = as_user(who)
    assert client.get(QUEUE).status_code == 403
    assert client.get(page_url(requests["a"])).status_code == 403


def test_the_queue_columns_filters_and_search(as_user, requests, raise_request, member):
    posted = raise_request(100)  # direct: posts at once
    client = as_user("program_admin_2")

    response = client.get(QUEUE)
    page = response.content.decode()
    for column in ("Member", "Points", "Band", "Store", "Requested by", "State", "Age", "Time left"):
        assert f">{column}<" in page or f">{column}</a>" in page, column
    assert [obj.pk for obj in response.context_data["cl"].result_list][0] == posted.pk  # newest first
    assert "+2,500" in page and ">HQ<" in page
    assert "6 d 23 h" in page  # time left of a fresh request (7 days)

    assert listed(client.get(QUEUE, {"state": "posted"})) == {posted.pk}
    assert listed(client.get(QUEUE, {"band": "headquarters"})) == {requests["hq"].pk}
    assert listed(client.get(QUEUE, {"band": "direct"})) == {posted.pk}
    assert listed(client.get(QUEUE, {"store": "hq"})) == {requests["hq"].pk}
    assert listed(client.get(QUEUE, {"store": requests["b"].store_id})) == {requests["b"].pk}
    assert listed(client.get(QUEUE, {"q": f"#{requests['b'].pk}"})) == {requests["b"].pk}
    assert listed(client.get(QUEUE, {"q": str(requests["a"].pk)})) == {requests["a"].pk}
    assert len(listed(client.get(QUEUE, {"q": member.loyalty_number}))) == 4
    assert listed(client.get(QUEUE, {"q": "' OR 1=1 --"})) == set()


def test_a_store_manager_sees_no_headquarters_store_choice(as_user, requests):
    page = as_user("manager_2").get(QUEUE).content.decode()
    assert "Headquarters (no store)" not in page and "Store B" not in page


# --- The request page and its buttons ------------------------------------------------------------


def buttons(response) -> set[str]:
    assert response.status_code == 200
    return set(re.findall(r'id="decision-(approve|review|reject)"', response.content.decode()))


@pytest.mark.parametrize(
    ("who", "request_key", "expected"),
    [
        ("manager_2", "a", {"approve", "reject"}),
        ("store_manager", "a", set()),  # the requester
        ("fraud_analyst", "a", set()),
        ("program_admin", "a", {"approve", "reject"}),
        ("program_admin", "hq", set()),  # the requester
        ("program_admin_2", "hq", {"approve", "reject"}),
        ("fraud_analyst", "hq", {"review", "reject"}),
    ],
)
def test_the_buttons_are_those_the_rules_allow(as_user, requests, who, request_key, expected):
    assert buttons(as_user(who).get(page_url(requests[request_key]))) == expected


def test_the_request_page_shows_the_request_and_is_read_only(as_user, requests):
    client = as_user("manager_2")
    response = client.get(page_url(requests["a"]))
    page = response.content.decode()
    assert not response.context_data["has_change_permission"]
    assert "+800" in page and "Supervisor approval" in page and "Time left" in page
    assert "the member verified by a phone call" in page  # the band's requirements
    assert "A. Manager" in page and "Member confirmed the purchase" in page
    assert 'id="adjustment-events"' in page and "Requested" in page
    assert 'name="_save"' not in page
    assert client.post(page_url(requests["a"]), {}).status_code == 403
    assert client.get(reverse("admin:loyalty_adjustmentrequest_delete", args=[requests["a"].pk])).status_code == 403


def test_another_stores_request_answers_404(as_user, requests):
    client = as_user("manager_b")
    request = requests["a"]
    assert client.get(page_url(request)).status_code == 404
    assert client.post(step_url(request, "approve"), {"comment": "x"}).status_code == 404
    assert client.get(page_url(requests["hq"])).status_code == 404  # headquarters: all-stores roles only
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "pending"


# --- Deciding ----------------------------------------------------------------------------------


def test_approving_posts_and_the_page_shows_the_event(as_user, requests):
    request = requests["a"]
    client = as_user("manager_2")

    response = client.post(step_url(request, "approve"), {"comment": "Receipt checked."})

    assert response.status_code == 302 and response["Location"] == page_url(request)
    request.refresh_from_db()
    assert request.state == "posted" and request.approved_by.username == "manager_2"
    operation = LedgerOperation.objects.get(pk=request.operation_id)
    assert (operation.kind, operation.points) == ("adjust", 800)
    page = client.get(page_url(request))
    assert any("approved and posted: +800 points" in m for m in messages_of(page))
    assert "Receipt checked." in page.content.decode() and buttons(page) == set()


def test_the_requesters_forged_approval_is_refused_and_nothing_posts(as_user, requests):
    request = requests["a"]
    client = as_user("store_manager")  # raised it; the page shows no button, the post is forged

    response = client.post(step_url(request, "approve"), {"comment": "Looks fine to me."}, follow=True)

    assert response.redirect_chain == [(page_url(request), 302)]
    assert "Nobody approves, reviews or rejects their own request." in messages_of(response)
    request.refresh_from_db()
    assert request.state == "pending" and request.approved_by is None
    assert no_adjustment_posted()
    assert list(AdjustmentEvent.objects.filter(request=request).values_list("kind", flat=True)) == ["requested"]


def test_a_role_that_may_not_approve_is_refused_with_a_message(as_user, requests):
    response = as_user("fraud_analyst").post(step_url(requests["a"], "approve"), follow=True)
    assert "You may not approve this request." in messages_of(response)
    assert no_adjustment_posted()


def test_a_decision_without_the_csrf_token_is_refused(staff, requests):
    request = requests["a"]
    client = login_verified(Client(enforce_csrf_checks=True), staff["manager_2"])

    assert client.post(step_url(request, "approve"), {"comment": "ok"}).status_code == 403
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "pending" and no_adjustment_posted()

    # The same post with the page's token goes through.
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(page_url(request)).content.decode())
    response = client.post(step_url(request, "approve"), {"comment": "ok", "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302 and AdjustmentRequest.objects.get(pk=request.pk).state == "posted"


@pytest.mark.parametrize("step", ["approve", "review", "reject"])
def test_the_decision_urls_answer_405_to_get(as_user, requests, step):
    assert as_user("program_admin_2").get(step_url(requests["hq"], step)).status_code == 405


def test_the_decision_urls_need_an_otp_verified_session(client, staff, requests):
    client.force_login(staff["manager_2"])  # password only
    response = client.post(step_url(requests["a"], "approve"))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert no_adjustment_posted()


def test_rejecting_needs_a_comment(as_user, requests):
    request = requests["a"]
    client = as_user("manager_2")

    response = client.post(step_url(request, "reject"), {"comment": "  "}, follow=True)
    assert "Say why the request is rejected." in messages_of(response)
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "pending"

    response = client.post(step_url(request, "reject"), {"comment": "No receipt."}, follow=True)
    assert f"Request #{request.pk} rejected." in messages_of(response)
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "rejected" and no_adjustment_posted()
    assert AdjustmentEvent.objects.get(request=request, kind="rejected").comment == "No receipt."


def test_a_headquarters_request_posts_after_the_approval_and_the_review(as_user, requests):
    request = requests["hq"]
    first = as_user("fraud_analyst").post(step_url(request, "review"), {"comment": "Pattern normal."}, follow=True)
    assert any("waits for its other approval" in m for m in messages_of(first))
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "pending"
    second = as_user("program_admin_2").post(step_url(request, "approve"), follow=True)
    assert any("approved and posted: +2,500 points" in m for m in messages_of(second))


def test_a_decision_on_a_decided_request_is_refused(as_user, requests):
    request = requests["a"]
    as_user("manager_2").post(step_url(request, "approve"))
    response = as_user("program_admin").post(step_url(request, "reject"), {"comment": "late"}, follow=True)
    assert "The request is already posted." in messages_of(response)


def test_an_expired_request_shows_no_buttons_and_refuses(as_user, requests):
    request = requests["a"]
    with rewriting_history():
        AdjustmentRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = as_user("manager_2")
    assert buttons(client.get(page_url(request))) == set()
    response = client.post(step_url(request, "approve"), follow=True)
    assert "The request expired before it was decided." in messages_of(response)
    assert AdjustmentRequest.objects.get(pk=request.pk).state == "expired"


# --- The request form ------------------------------------------------------------------------


def form_data(member, reason, store=None, points=1_200, **overrides) -> dict:
    verified_at = timezone.localtime() - timedelta(minutes=10)
    data = {
        "loyalty_number": member.loyalty_number,
        "points": str(points),
        "reason": str(reason.pk),
        "store": str(store.pk) if store else "",
        "justification": "Customer showed the receipt; the till was offline during the purchase.",
        "verification_method": "phone",
        "verified_by": "A. Manager",
        "verified_at": verified_at.strftime("%Y-%m-%dT%H:%M"),
        "verification_outcome": "Member confirmed the purchase and the date.",
    }
    return {**data, **overrides}


def test_the_form_offers_active_reasons_and_the_users_stores_only(as_user, store_a, store_b, reason):
    AdjustmentReason.objects.create(code="OLD", label="Retired reason", active=False)
    manager = as_user("store_manager").get(ADD)
    form = manager.context_data["adminform"].form
    offered = list(form.fields["reason"].queryset)
    assert reason in offered and all(r.active for r in offered) and "OLD" not in {r.code for r in offered}
    assert list(form.fields["store"].queryset) == [store_a] and form.fields["store"].required
    assert form.fields["store"].initial == store_a.pk
    page = manager.content.decode()
    assert "What each amount needs" in page and 'enctype="multipart/form-data"' in page

    hq_form = as_user("program_admin").get(ADD).context_data["adminform"].form
    assert set(hq_form.fields["store"].queryset) == {store_a, store_b} and not hq_form.fields["store"].required


def test_the_form_raises_a_request_and_goes_to_its_page(as_user, staff, member, reason, store_a):
    response = as_user("store_manager").post(ADD, form_data(member, reason, store_a))

    request = AdjustmentRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == page_url(request)
    assert (request.points, request.band, request.state, request.store) == (1_200, "supervisor", "pending", store_a)
    assert request.requested_by == staff["store_manager"] and request.verified_by == "A. Manager"
    assert request.verified_at is not None and no_adjustment_posted()


def test_a_small_adjustment_posts_at_once(as_user, member, reason, store_a):
    response = as_user("store_manager").post(ADD, form_data(member, reason, store_a, points=120), follow=True)
    request = AdjustmentRequest.objects.get()
    assert request.state == "posted"
    assert f"Request #{request.pk} posted at once: +120 points." in messages_of(response)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"justification": "too short"}, "justification", "A detailed justification"),
        ({"verification_method": ""}, "verification_method", "Record how the member was verified"),
        ({"verified_by": ""}, "verification_method", "Record who verified the member"),
        ({"verified_at": "2999-01-01T10:00"}, "verified_at", "The verification cannot be in the future."),
        ({"points": "-1200"}, "points", "a debit cannot exceed them"),
        ({"points": "0"}, "points", "a whole, non-zero number of points"),
        ({"points": "2500"}, "document", "A written justification document is required"),
        ({"loyalty_number": "9900000000000000"}, "loyalty_number", "No member has that loyalty number."),
        ({"store": ""}, "store", "This field is required."),
    ],
)
def test_refusals_show_as_form_errors(as_user, member, reason, store_a, overrides, field, message):
    response = as_user("store_manager").post(ADD, {**form_data(member, reason, store_a), **overrides})

    assert response.status_code == 200
    errors = response.context_data["adminform"].form.errors
    assert any(message in e for e in errors.get(field, [])), errors
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert not AdjustmentRequest.objects.exists()


def test_another_stores_choice_is_refused(as_user, member, reason, store_b):
    response = as_user("store_manager").post(ADD, form_data(member, reason, store_b))
    assert "Select a valid choice" in str(response.context_data["adminform"].form.errors["store"])
    assert not AdjustmentRequest.objects.exists()


def test_a_refusal_without_a_field_shows_above_the_form(as_user, staff, member, reason, store_a):
    staff["store_manager"].member_account = member
    staff["store_manager"].save(update_fields=["member_account"])
    response = as_user("store_manager").post(ADD, form_data(member, reason, store_a))
    assert "You may not adjust your own member account." in response.content.decode()
    assert not AdjustmentRequest.objects.exists()


@pytest.mark.parametrize("who", ["fraud_analyst", "cashier", "system_admin"])
def test_roles_that_may_not_request_get_403(as_user, member, reason, store_a, who):
    client = as_user(who)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, form_data(member, reason, store_a)).status_code == 403
    assert not AdjustmentRequest.objects.exists()


def test_the_form_preselects_no_reason(as_user, reason):
    # given: several active reasons (DUPLICATE sorts first and was pre-selected)
    AdjustmentReason.objects.get_or_create(code="DUPLICATE", defaults={"label": "Duplicate transaction"})

    page = as_user("store_manager").get(ADD)

    form = page.context_data["adminform"].form
    assert form.fields["reason"].empty_label == "Choose a reason"
    html = page.content.decode()
    select = html[html.index('name="reason"') : html.index("</select>", html.index('name="reason"'))]
    assert re.search(r'<option value="" selected>Choose a reason</option>', select), select
    assert select.count("selected") == 1


def test_the_form_reports_every_missing_item_at_once(as_user, member, store_a):
    # given: a headquarters-band amount with no reason and none of its evidence
    data = {"loyalty_number": member.loyalty_number, "points": "2500", "store": str(store_a.pk)}

    response = as_user("store_manager").post(ADD, data)

    # then: one submit names the reason, the justification, the verification and the document
    assert response.status_code == 200
    errors = response.context_data["adminform"].form.errors
    assert set(errors) >= {"reason", "justification", "verification_method", "document"}, errors
    assert not AdjustmentRequest.objects.exists()


def test_evidence_errors_show_with_an_unknown_loyalty_number(as_user, reason, store_a):
    data = {"loyalty_number": "9900000000000000", "points": "1200", "reason": str(reason.pk), "store": str(store_a.pk)}

    errors = as_user("store_manager").post(ADD, data).context_data["adminform"].form.errors

    assert "No member has that loyalty number." in errors["loyalty_number"]
    assert {"justification", "verification_method"} <= set(errors), errors


def member_named(store):
    from members.services.membership import member_create

    return member_create(home_store=store, name="Aisha Rahman")


def test_the_member_lookup_shows_the_member_without_raising_a_request(as_user, store_a):
    # given: a member with a name
    member = member_named(store_a)

    # when: the staff types the loyalty number and asks who it is (a POST: nothing in the URL)
    response = as_user("store_manager").post(ADD, {"loyalty_number": member.loyalty_number, "_lookup": "1"})

    # then: the form shows the member, masked, and no error for the fields not filled yet
    assert response.status_code == 200
    page = response.content.decode()
    found = page[page.index('id="member-found"') :][:300]
    assert "A••• R•••" in found and member.loyalty_number[:4] in found
    assert "Aisha" not in page and "Rahman" not in page
    assert not response.context_data["adminform"].form.errors
    assert not AdjustmentRequest.objects.exists()


def test_the_member_lookup_says_when_no_member_has_the_number(as_user):
    response = as_user("store_manager").post(ADD, {"loyalty_number": "9900000000000000", "_lookup": "1"})
    assert "No member has that loyalty number." in response.context_data["adminform"].form.errors["loyalty_number"]
    assert 'id="member-found"' not in response.content.decode()


def test_the_member_page_link_preselects_the_member(as_user, store_a):
    member = member_named(store_a)

    response = as_user("store_manager").get(ADD, {"member": member.pk})

    form = response.context_data["adminform"].form
    assert form.initial["loyalty_number"] == member.loyalty_number
    assert "A••• R•••" in response.content.decode()
    # an unknown or malformed member is just not preselected
    for junk in ("999999", "abc"):
        response = as_user("store_manager").get(ADD, {"member": junk})
        assert response.status_code == 200 and not response.context_data["adminform"].form.initial.get("loyalty_number")


# --- The document ------------------------------------------------------------------------------


@pytest.fixture
def hq_request_with_document(as_user, member, reason):
    document = SimpleUploadedFile("scan.pdf", PDF, content_type="application/octet-stream")
    data = form_data(member, reason, points=2_500, verification_method="identity_document", document=document)
    response = as_user("program_admin").post(ADD, data)
    assert response.status_code == 302, response.context_data["adminform"].form.errors
    return AdjustmentRequest.objects.get()


def test_the_document_is_uploaded_and_served_to_those_who_see_the_request(as_user, hq_request_with_document):
    request = hq_request_with_document
    assert request.document_type == "application/pdf" and request.band == "headquarters"
    url = step_url(request, "document")
    assert f'href="{url}"' in as_user("fraud_analyst").get(page_url(request)).content.decode()

    response = as_user("fraud_analyst").get(url)

    assert response.status_code == 200 and response.content == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="adjustment-{request.pk}.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]


def test_the_document_answers_404_outside_the_scope(as_user, hq_request_with_document, requests):
    url = step_url(hq_request_with_document, "document")
    assert as_user("store_manager").get(url).status_code == 404  # headquarters request
    assert as_user("manager_b").get(url).status_code == 404
    assert as_user("cashier").get(url).status_code == 403  # no adjustments at all
    # A request without a document.
    assert as_user("program_admin").get(step_url(requests["a"], "document")).status_code == 404
    assert as_user("program_admin").post(url).status_code == 405


# --- The index ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "text"),
    [
        ("program_admin_2", "3 adjustment requests await your decision"),
        ("manager_2", "1 adjustment request awaits your decision"),
        ("store_manager", None),
        ("system_admin", None),
    ],
)
def test_the_index_says_how_many_requests_await_the_user(as_user, requests, who, text):
    page = as_user(who).get(reverse("admin:index")).content.decode()
    if text is None:
        assert 'id="adjustments-awaiting"' not in page
    else:
        assert text in page and f'href="{QUEUE}?awaiting=me"' in page


# --- Reason codes ----------------------------------------------------------------------------


def test_programme_administrators_manage_reasons_without_deleting_them(as_user, reason):
    client = as_user("program_admin")
    response = client.post(
        reverse("admin:loyalty_adjustmentreason_add"),
        {"code": "STORE_CLOSURE", "label": "Store closed", "active": "on"},
    )
    assert response.status_code == 302 and AdjustmentReason.objects.filter(code="STORE_CLOSURE", active=True).exists()
    change = reverse("admin:loyalty_adjustmentreason_change", args=[reason.pk])
    response = client.post(change, {"code": "RENAMED", "label": "Missed earn"})
    assert response.status_code == 302, response.context_data["adminform"].form.errors
    reason.refresh_from_db()
    assert (reason.code, reason.label, reason.active) == ("MISSED_EARN", "Missed earn", False)
    assert client.get(reverse("admin:loyalty_adjustmentreason_delete", args=[reason.pk])).status_code == 403

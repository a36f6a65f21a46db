"""A member with activity at store A, at store B and at headquarters (issue 11, D3), and
helpers to read the member page's panels.

Every row carries a distinctive figure, so a panel's HTML tells whose rows it holds:

- store A (``A``): an earn of 3,331 points at a store-A till; a change by store A's manager;
- store B (``B``): an earn of 2,771 points and a redemption hold of 1,234 at a store-B
  till, an adjustment of 411 raised by store B's manager, a goodwill voucher issued
  there, a change by store B's manager;
- headquarters (``HQ``): an adjustment of 222 by a programme administrator (no store),
  a change by them, the consent history (one record made by staff).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, LogEntry
from django.urls import reverse

from loyalty.adjustments.models import AdjustmentReason
from loyalty.adjustments.services import adjustment_request
from loyalty.kernel.models import Till
from loyalty.ledger.operations import Actor, points_earn, points_hold
from members.models import Member
from members.services.consents import consents_record
from vouchers.models import Reward
from vouchers.services.issuing import voucher_goodwill_issue

# origin -> the figures of its journal rows (history: points; lots: points earned)
OPERATIONS = {"A": {3331}, "B": {2771, 1234, 411}, "HQ": {222}}
LOTS = {"A": {3331}, "B": {2771, 411}, "HQ": {222}}
# origin -> the change message of its admin log entry (the /history/ page)
CHANGES = {"A": "Changed by the store A manager", "B": "Changed by the store B manager", "HQ": "Changed by HQ"}
AVAILABLE = 3331 + 2771 + 411 + 222 - 1234


@dataclass
class CrossStoreMember:
    member: Member
    voucher_code: str
    adjustment_b_id: int


def cross_store_member_make(*, store_a, store_b, make_staff, program_admin) -> CrossStoreMember:
    """A member whose home store is B (the issue's "PG01 member"), with the rows above."""
    manager_a = make_staff("cross.manager.a", "store_manager", stores=[store_a])
    manager_b = make_staff("cross.manager.b", "store_manager", stores=[store_b])
    member = Member.objects.create(home_store=store_b)
    till_a = Till.objects.create(store=store_a, code="XA", key_id="cross-till-a", secret_encrypted="-")
    till_b = Till.objects.create(store=store_b, code="XB", key_id="cross-till-b", secret_encrypted="-")
    points_earn(member=member, points=3331, receipt_ref="XA-1", actor=Actor(till=till_a), idempotency_key="xa-1")
    points_earn(member=member, points=2771, receipt_ref="XB-1", actor=Actor(till=till_b), idempotency_key="xb-1")
    points_hold(member=member, points=1234, actor=Actor(till=till_b), idempotency_key="xb-hold")
    # Seeded by a migration, but a live-server test's flush removes it for the next one.
    reason = AdjustmentReason.objects.get_or_create(code="MISSED_EARN", defaults={"label": "Purchase not credited"})[0]
    adjustment_b = adjustment_request(actor=manager_b, member=member, points=411, reason=reason, store=store_b)
    adjustment_request(actor=program_admin, member=member, points=222, reason=reason, store=None)
    reward = Reward.objects.create(name="Cross-store mug", kind="free_item", item="Mug", points_price=100)
    voucher = voucher_goodwill_issue(staff=manager_b, member=member, reward=reward, reason="Sorry (store B)")
    consents_record(member=member, choices={"essential": True, "sms_marketing": True}, source="enrolment")
    # Staff (somewhere) withdrew SMS marketing on the member's request: when, and that
    # staff acted, is in the consent history.
    consents_record(member=member, choices={"sms_marketing": False}, source="staff")
    for user, origin in ((manager_a, "A"), (manager_b, "B"), (program_admin, "HQ")):
        LogEntry.objects.log_actions(user.pk, [member], CHANGE, change_message=CHANGES[origin], single_object=True)
    return CrossStoreMember(member=member, voucher_code=voucher.code, adjustment_b_id=adjustment_b.pk)


def page_url(member) -> str:
    return reverse("admin:members_member_change", args=[member.pk])


def history_url(member) -> str:
    return reverse("admin:members_member_history", args=[member.pk])


def panel(body: str, field: str) -> str:
    """The HTML of one panel of the member page, the ``<section>`` of class
    ``field-<field>`` ("" when it is not shown)."""
    match = re.search(rf'<section class="[^"]*\bfield-{field}\b[^"]*"[^>]*>(.*?)</section>', body, re.S)
    return match.group(1) if match else ""


def figures(html: str) -> set[int]:
    """Every figure standing alone in a table cell, its sign and thousands separators
    dropped (``<td><span class="points points-in">+3,331</span></td>`` is 3331)."""
    found = set()
    for cell in re.findall(r"<td>(.*?)</td>", html, re.S):
        text = re.sub(r"<[^>]+>", "", cell).strip().lstrip("+\u2212-").replace(",", "")
        if text.isdigit():
            found.add(int(text))
    return found


def origins_shown(html: str, table: dict[str, set[int]]) -> set[str]:
    """The origins (A, B, HQ) any of whose figures appear in ``html``'s table cells."""
    shown = figures(html)
    return {origin for origin, values in table.items() if values & shown}

"""Demo data for a first run: stores, staff (one per role, with MFA), members with a few
months of history, and something on every admin page.

Everything goes through the services a real programme would use (enrolment with its
consents, ledger operations at the tills, shifts, voucher purchases and redemptions,
adjustment requests and their decisions, fraud alerts, the nightly report), run at
moments relative to now: the clock is set back (``time_machine``) while each past event
happens, so dates, velocity limits and expiry work as they would have then. Personal
data is made up and stored encrypted like real data.

Idempotent: running it again keeps what exists (the activity is written once, in the
same transaction as the tills it is recorded at), tops up the backup codes and prints
the same log-ins, the demo till's credentials last. Refuses to run with DEBUG off: demo
passwords are public.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta

import time_machine
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from fraud.models import FraudAlert, FraudCase
from fraud.services import (
    Subject,
    alert_raise,
    case_assign,
    case_close,
    case_note,
    case_start,
    cashier_frequency_alert_raise,
    fraud_alert_close,
)
from loyalty.adjustments.models import AdjustmentReason, AdjustmentReport, AdjustmentRequest
from loyalty.adjustments.reports import adjustment_report_publish, day_bounds, yesterday
from loyalty.adjustments.services import (
    Evidence,
    adjustment_approve,
    adjustment_reject,
    adjustment_request,
    adjustment_review,
)
from loyalty.api.auth import till_create
from loyalty.kernel.crypto import decrypt_str
from loyalty.kernel.models import OutboundMessage, Store, Till
from loyalty.ledger.operations import (
    Actor,
    points_earn_purchase,
    points_earn_reverse,
    points_expire_due,
)
from members.models import ConsentRecord, Member, MemberSession
from members.services.consents import Purpose, consents_record
from members.services.membership import member_create
from members.services.sessions import session_start
from staffauth.models import SecurityEvent, StaffUser
from staffauth.roles import CASHIER, FRAUD_ANALYST, PROGRAM_ADMIN, STORE_MANAGER, SYSTEM_ADMIN
from staffauth.services import security_event_record
from vouchers.models import PendingRedemption, RedemptionAudit, Reward, Voucher
from vouchers.services.audit import redemption_audit_review
from vouchers.services.issuing import voucher_goodwill_issue, voucher_purchase
from vouchers.services.offline import offline_redemption_submit, pending_redemption_approve
from vouchers.services.redemption import RedemptionRefused, voucher_redeem
from vouchers.services.shifts import ShiftRefused, shift_end, shift_start
from vouchers.services.till_points import member_redemption_confirm, till_redemption_capture, till_redemption_hold

REASONS = {
    "MISSED_EARN": "Purchase not credited at the till",
    "DUPLICATE": "Points credited twice",
    "GOODWILL": "Goodwill gesture (service recovery)",
    "PROMOTION": "Promotion not applied",
}
STORES = [
    ("KL01", "Kuala Lumpur Pavilion", "Central"),
    ("PJ02", "Petaling Jaya Mall", "Central"),
    ("PG01", "Penang Gurney", "North"),
]

# username, role, stores, password
STAFF = [
    ("cashier", CASHIER, ["KL01"], "Cashier-demo-2026!"),
    ("manager", STORE_MANAGER, ["KL01"], "Manager-demo-2026!"),
    ("manager.penang", STORE_MANAGER, ["PG01"], "Penang-demo-2026!"),
    ("progadmin", PROGRAM_ADMIN, [], "Program-demo-2026!"),
    ("sysadmin", SYSTEM_ADMIN, [], "Sysadmin-demo-2026!"),
    ("fraud", FRAUD_ANALYST, [], "Fraud-demo-2026!"),
]
PASSWORDS = {username: password for username, _, _, password in STAFF}
BACKUP_CODES = 5
# Demo members per store.
MEMBERS_PER_STORE = 4
# Made-up personal data for the demo members (stored encrypted, like real data).
DEMO_NAMES = ["Aisyah Rahman", "Tan Wei Ming", "Priya Subramaniam", "Ahmad Faizal", "Lim Mei Ling", "Ravi Kumar"]
# The integrators' test till (README, "The till API"): its key id is published.
DEMO_TILL = ("KL01", "DEMO", "demo-till")
# Each store's till the demo history happened at.
HISTORY_TILL = "T1"
# Purchases of every member: (days ago, amount in sen); a member's own share is added.
PURCHASES = [(150, 12_000), (95, 6_450), (60, 21_000), (31, 4_500), (12, 8_800), (2, 3_200)]
CATALOGUE = [
    {"name": "RM5 off", "kind": Reward.Kind.FIXED_VALUE, "value_minor": 500, "points_price": 400},
    {"name": "10% off one basket", "kind": Reward.Kind.PERCENTAGE, "percent": 10, "points_price": 900},
    {"name": "Free coffee", "kind": Reward.Kind.FREE_ITEM, "item": "Regular coffee", "points_price": 150},
    {
        "name": "RM100 off (Gold and above)", "kind": Reward.Kind.FIXED_VALUE, "value_minor": 10_000,
        "points_price": 6_000, "min_tier": 3, "stock_remaining": 50, "per_member_limit": 1,
    },
]  # fmt: skip


@contextmanager
def at(moment: datetime) -> Iterator[None]:
    """Run what follows as if it were ``moment`` (the clock keeps ticking from there)."""
    with time_machine.travel(moment, tick=True):
        yield


def totp_now(user: StaffUser) -> str:
    """The user's authenticator code at the current (possibly travelled) time."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


class Command(BaseCommand):
    help = "Load demo stores, staff (one per role, with MFA), members and their activity; print how to log in."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates accounts with published passwords; it runs only with DEBUG=1.")
        # The services log every step at INFO (and each message sent): the summary below says it once.
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            logins, till_secret = self.seed()
        finally:
            logging.disable(previous)
        self.summary()
        self.stdout.write(self.style.MIGRATE_HEADING("\nDemo log-ins (admin at http://127.0.0.1:8000/admin/)"))
        for login in logins:
            self.stdout.write(
                f"\n  {login['role']}: username {login['username']!r}, password {login['password']!r}"
                f"{'  stores: ' + ', '.join(login['stores']) if login['stores'] else '  (all stores)'}\n"
                f"    authenticator: {login['uri']}\n"
                f"    code right now: {login['now']}   backup codes: {' '.join(login['codes'])}"
            )
        self.stdout.write(
            "\n  At the OTP prompt type the authenticator's current code (add the otpauth URI to an app,\n"
            "  or run `make otp STAFF=<username>`), or one of the backup codes (each works once).\n"
        )
        store, code, key_id = DEMO_TILL
        self.stdout.write(
            f"  Test till {store}/{code} for the till API (docs at http://127.0.0.1:8000/api/docs/):\n"
            f"    X-Till-Key: {key_id}   secret: {till_secret}\n"
        )

    def summary(self) -> None:
        self.stdout.write(
            f"Demo data: {Store.objects.count()} stores, {Member.objects.count()} members, "
            f"{Voucher.objects.count()} vouchers, {AdjustmentRequest.objects.count()} adjustment requests, "
            f"{FraudAlert.objects.count()} fraud alerts, {FraudCase.objects.count()} fraud cases, {AdjustmentReport.objects.count()} adjustment report(s)."
        )
        outbox = OutboundMessage.objects.count()
        if outbox:
            folder = settings.OUTBOX_DIR if "OutboxFile" in settings.EMAIL_BACKEND else "the outbox"
            self.stdout.write(f"Messages to members and staff: {outbox} (admin: Outbound messages; files: {folder}).")

    @transaction.atomic
    def seed(self) -> tuple[list[dict], str]:
        now = timezone.now()
        stores = {}
        for code, name, region in STORES:
            stores[code], _ = Store.objects.get_or_create(code=code, defaults={"name": name, "region": region})
        logins = [self.seed_staff(stores, *row) for row in STAFF]
        self.seed_members(stores, now)
        till_secret = self.seed_demo_till(stores)
        for reward in CATALOGUE:
            Reward.objects.get_or_create(name=reward["name"], defaults=reward)
        if not Till.objects.filter(store=stores["KL01"], code=HISTORY_TILL).exists():
            tills = {code: till_create(store=store, code=HISTORY_TILL)[0] for code, store in stores.items()}
            Activity(stores, tills, now).run()
        return logins, till_secret

    # --- staff, members, the demo till --------------------------------------------------------

    def seed_staff(self, stores, username, role, store_codes, password) -> dict:
        user = StaffUser.objects.filter(username=username).first()
        if user is None:
            user = StaffUser.objects.create_user(username=username, password=password, email=f"{username}@demo.invalid")
        user.groups.set([Group.objects.get(name=role.name)])
        user.stores.set([stores[c] for c in store_codes])
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
        static, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
        for _ in range(max(BACKUP_CODES - static.token_set.count(), 0)):
            StaticToken.objects.create(device=static, token=StaticToken.random_token())
        return {
            "role": role.name,
            "username": username,
            "password": password,
            "stores": store_codes,
            "uri": device.config_url,
            "now": totp_now(user),
            "codes": sorted(static.token_set.values_list("token", flat=True)),
        }

    def seed_members(self, stores, now: datetime) -> None:
        """Members enrol (months ago) with made-up, encrypted personal data and the
        consents an enrolment records: essential processing, and the opt-ins each chose."""
        n = Member.objects.count()
        for s, store in enumerate(stores.values()):
            for _ in range(MEMBERS_PER_STORE - Member.objects.filter(home_store=store).count()):
                with at(now - timedelta(days=200 - 3 * n, hours=s)):
                    member = member_create(
                        home_store=store, name=f"{DEMO_NAMES[n % len(DEMO_NAMES)]} {n + 1}",
                        phone=f"+60 12-555 {1000 + n:04d}", email=f"demo.member{n + 1}@example.com",
                        preferred_channel="sms" if n % 2 else "email",
                    )  # fmt: skip
                    self.enrolment_consents(member, n)
                n += 1
        # Members of an older demo database enrolled without consents: record them now.
        unrecorded = Member.objects.exclude(consent_records__source=ConsentRecord.Source.ENROLMENT)
        for member in unrecorded.filter(pii_erased_at__isnull=True).order_by("pk"):
            self.enrolment_consents(member, member.pk)

    @staticmethod
    def enrolment_consents(member: Member, n: int) -> None:
        choices = {
            Purpose.ESSENTIAL: True,
            Purpose.SMS_MARKETING: n % 2 == 0,
            Purpose.EMAIL_MARKETING: n % 3 != 2,
            Purpose.ANALYTICS: n % 4 != 3,
            Purpose.DATA_SHARING: n % 5 == 0,
            Purpose.PERSONALISATION: n % 2 == 1,
        }
        consents_record(member=member, choices=dict(choices), source=ConsentRecord.Source.ENROLMENT, ip="203.0.113.7")

    def seed_demo_till(self, stores) -> str:
        """The integrators' test till, made like any till (``till_create``: a random
        secret, stored encrypted); its secret is shown on every run (demo only)."""
        store_code, code, key_id = DEMO_TILL
        till = Till.objects.filter(store=stores[store_code], code=code).first()
        if till is None:
            till, secret = till_create(store=stores[store_code], code=code, key_id=key_id)
            return secret
        return decrypt_str(till.secret_encrypted)


class Activity:
    """A few months of a programme's life, once: purchases, returns, an expiry,
    voucher purchases and redemptions, till shifts, a hold in progress, offline
    redemptions, audits, adjustments in every state, fraud alerts, security events and
    yesterday's adjustment report."""

    def __init__(self, stores: dict[str, Store], tills: dict[str, Till], now: datetime):
        self.stores, self.tills, self.now = stores, tills, now
        self.staff = {u.username: u for u in StaffUser.objects.filter(username__in=PASSWORDS)}
        self.members = list(Member.objects.select_related("home_store").order_by("pk"))
        self.sessions: dict[int, MemberSession] = {}

    def ago(self, days: float = 0, hours: float = 0) -> datetime:
        return self.now - timedelta(days=days, hours=hours)

    def run(self) -> None:
        self.purchases()
        self.app_sessions()
        self.vouchers()
        self.till_day()
        self.adjustments()
        self.alerts_and_security()
        self.fraud_cases()
        with at(self.ago(hours=1)):
            self.consent_changes()
        # Last night's report, built by the job's own service (it also mails headquarters).
        adjustment_report_publish(day=yesterday())

    # --- points --------------------------------------------------------------------------------

    def purchases(self) -> None:
        """Purchases at each member's store, a return, and (for some) points from over a
        year ago that expired last month."""
        for n, member in enumerate(self.members):
            till = self.tills[member.home_store.code]
            spend = 10 if n % 4 == 0 else 1  # one big spender per store (a higher tier)
            history = list(PURCHASES)
            if n % 4 == 1:
                history.insert(0, (400, 9_900))
            for i, (days, amount) in enumerate(history):
                when = self.ago(days, hours=n % 5)
                with at(when):
                    points_earn_purchase(
                        member=member, amount_minor=(amount + 700 * n) * spend, actor=Actor(till=till),
                        receipt_ref=self.receipt(till, when, n, i), idempotency_key=f"demo:earn:{n}:{i}",
                    )  # fmt: skip
            if n % 4 == 2:  # half of the third purchase came back
                days, amount = history[2]
                with at(self.ago(days - 3)):
                    points_earn_reverse(
                        member=member, receipt_ref=self.receipt(till, self.ago(days, hours=n % 5), n, 2),
                        amount_minor=(amount + 700 * n) // 2, actor=Actor(till=till), idempotency_key=f"demo:return:{n}",
                    )  # fmt: skip
        with at(self.ago(34)):  # the nightly expiry job, a month ago
            points_expire_due()

    @staticmethod
    def receipt(till: Till, when: datetime, n: int, i: int) -> str:
        return f"{till.store.code}/{till.code}/{timezone.localtime(when):%Y%m%d}-{n:02d}{i}"

    def app_sessions(self) -> None:
        """Members signed in to the app (a device each): they buy vouchers and confirm
        till redemptions there."""
        for n, member in enumerate(self.members):
            if n % 2:
                continue
            with at(self.ago(25 - n, hours=2)):
                tokens = session_start(
                    member=member, channel=MemberSession.Channel.APP, device_fingerprint=f"demo-phone-{n}",
                    device_label="Demo phone", ip="203.0.113.20",
                )  # fmt: skip
            self.sessions[n] = MemberSession.objects.get(pk=tokens.session_id)

    # --- vouchers ------------------------------------------------------------------------------

    def vouchers(self) -> None:
        rewards = {r.name: r for r in Reward.objects.all()}
        for n in self.sessions:
            reward = rewards["RM5 off" if n % 4 == 0 else "Free coffee"]
            with at(self.ago(20 - n / 2)):
                voucher_purchase(
                    member=self.members[n], reward_id=reward.pk, idempotency_key=f"demo:voucher:{n}",
                    session=self.sessions[n],
                )  # fmt: skip
        with at(self.ago(9, hours=3)):
            for n, reason in [(1, "Demo: welcome gift"), (5, "Demo: long wait at the counter")]:
                voucher_goodwill_issue(
                    staff=self.staff["progadmin"], member=self.members[n], reward=rewards["Free coffee"], reason=reason
                )

    def shift(self, username: str, till: Till):
        """Clock ``username`` in at ``till`` with their password and current code."""
        user = self.staff[username]
        return shift_start(till=till, username=username, password=PASSWORDS[username], otp_token=totp_now(user))

    def till_day(self) -> None:
        """Yesterday at KL01: the cashier's shift with voucher scans (one a used voucher
        presented again), a points redemption the member confirmed in the app (sampled
        for audit), offline redemptions; a refused clock-in; today a hold in progress."""
        till = self.tills["KL01"]
        kl = [n for n, m in enumerate(self.members) if m.home_store_id == till.store_id]
        vouchers = list(
            Voucher.objects.filter(member__home_store=till.store).select_related("member").order_by("issued_at", "pk")
        )
        # A mistyped password: refused and recorded in the security log, as a real one is.
        with at(self.ago(1, hours=6)), suppress(ShiftRefused):
            shift_start(till=till, username="cashier", password="mistyped", otp_token="000000")  # noqa: S106
        with at(self.ago(1, hours=5)):
            shift = self.shift("cashier", till).shift
        sampled = iter([True, False, False])
        for k, voucher in enumerate(vouchers[:3]):
            with at(self.ago(1, hours=4.5 - k / 2)):
                voucher_redeem(
                    till=till, shift=shift, idempotency_key=f"demo:redeem-voucher:{k}", code=voucher.code,
                    member_loyalty_number=voucher.member.loyalty_number, sampler=lambda: next(sampled),
                )  # fmt: skip
        if vouchers:
            # The first voucher shown again: refused, and the fraud team hears of it.
            with at(self.ago(1, hours=3)), suppress(RedemptionRefused):
                voucher_redeem(
                    till=till, shift=shift, idempotency_key="demo:rescan", code=vouchers[0].code,
                    member_loyalty_number=vouchers[0].member.loyalty_number,
                )  # fmt: skip
        member = self.members[kl[0]]
        with at(self.ago(1, hours=2.5)):
            held = till_redemption_hold(
                till=till, shift=shift, member=member, points=200, idempotency_key="demo:till-hold:1"
            )
            member_redemption_confirm(member=member, session=self.sessions[kl[0]], hold_id=held.body["hold_id"])
            till_redemption_capture(
                till=till, shift=shift, hold_id=held.body["hold_id"], idempotency_key="demo:till-capture:1",
                sampler=lambda: True,
            )  # fmt: skip
        with at(self.ago(1, hours=2)):  # the network was down: two redemptions queued for approval
            for k, n in enumerate(kl[1:3]):
                offline_redemption_submit(
                    till=till, shift=shift, member=self.members[n], idempotency_key=f"demo:offline:{k}",
                    attempted_at=self.ago(1, hours=2 + k / 4), points=100 + 20 * k,
                )  # fmt: skip
        with at(self.ago(1, hours=1)):
            shift_end(shift=shift)
        with at(self.ago(hours=20)):
            first = PendingRedemption.objects.filter(till=till).order_by("attempted_at").first()
            if first is not None:
                pending_redemption_approve(pending_id=first.pk, actor=self.staff["manager"])
            audit = RedemptionAudit.objects.filter(store=till.store).order_by("pk").first()
            if audit is not None:
                redemption_audit_review(
                    audit_id=audit.pk, reviewer=self.staff["manager"], outcome=RedemptionAudit.Outcome.IRREGULAR,
                    note="Receipt not found in the till roll for this redemption.",
                )  # fmt: skip
        # Today: a redemption held at the till, waiting for the member's code or app.
        with at(self.ago(hours=2)):
            shift = self.shift("cashier", till).shift
        with at(self.now - timedelta(minutes=3)):
            till_redemption_hold(
                till=till, shift=shift, member=self.members[kl[3]], points=100, idempotency_key="demo:till-hold:2"
            )

    # --- adjustments ---------------------------------------------------------------------------

    def adjustments(self) -> None:
        """Requests in every state: posted at once, approved, reviewed and posted,
        rejected (yesterday, so the nightly report has them), and three awaiting a
        decision (the store manager's, the programme administrator's, both HQ steps)."""
        s, kl, pg, pj = self.staff, self.stores["KL01"], self.stores["PG01"], self.stores["PJ02"]
        members = {
            code: [m for m in self.members if m.home_store_id == store.pk] for code, store in self.stores.items()
        }
        # The catalogue a migration ships; made again here when a flushed database lost it.
        reasons = {
            code: AdjustmentReason.objects.get_or_create(code=code, defaults={"label": label})[0]
            for code, label in REASONS.items()
        }

        def verified(by: str) -> dict:
            return {
                "verification_method": AdjustmentRequest.Verification.PHONE, "verified_by": by,
                "verified_at": timezone.now() - timedelta(minutes=20),
                "verification_outcome": "Member confirmed the purchase on the phone.",
            }  # fmt: skip

        def document() -> SimpleUploadedFile:
            return SimpleUploadedFile("statement.pdf", b"%PDF-1.4\n% demo justification\n%%EOF\n")

        with at(self.ago(2, hours=4)):
            adjustment_request(
                actor=s["manager"], member=members["KL01"][0], points=150, reason=reasons["GOODWILL"], store=kl
            )
        # Yesterday by the programme's clock, whatever the hour now: the nightly report's day.
        with at(day_bounds(yesterday())[0] + timedelta(hours=10)):
            adjustment_request(
                actor=s["progadmin"], member=members["PJ02"][0], points=300, reason=reasons["GOODWILL"], store=pj
            )
            adjustment_request(
                actor=s["progadmin"], member=members["PJ02"][1], points=-120, reason=reasons["DUPLICATE"], store=pj
            )
            approved = adjustment_request(
                actor=s["manager"], member=members["KL01"][1], points=900, reason=reasons["MISSED_EARN"], store=kl,
                evidence=Evidence(justification="Card reader down at till 2; receipt KL01/2/4471 checked.", **verified("manager")),
            )  # fmt: skip
            rejected = adjustment_request(
                actor=s["manager.penang"], member=members["PG01"][1], points=1_500, reason=reasons["MISSED_EARN"],
                store=pg, evidence=Evidence(justification="Member says points were missing in March.", **verified("manager.penang")),
            )  # fmt: skip
            large = adjustment_request(
                actor=s["manager"], member=members["KL01"][2], points=2_500, reason=reasons["PROMOTION"], store=kl,
                evidence=Evidence(
                    justification="Double-points weekend not applied to a sofa purchase; invoice attached.",
                    document=document(), **verified("manager"),
                ),
            )  # fmt: skip
        with at(day_bounds(yesterday())[0] + timedelta(hours=12)):
            adjustment_approve(actor=s["progadmin"], request_id=approved.pk, comment="Receipt matches the till roll.")
            adjustment_reject(
                actor=s["progadmin"], request_id=rejected.pk, reason="No receipt; the purchase predates the card."
            )
            adjustment_approve(actor=s["progadmin"], request_id=large.pk)
            adjustment_review(actor=s["fraud"], request_id=large.pk, comment="Invoice checked with the store.")
        with at(self.ago(hours=3)):
            adjustment_request(
                actor=s["progadmin"],
                member=members["KL01"][3],
                points=600,
                reason=reasons["GOODWILL"],
                store=kl,
                evidence=Evidence(justification="Delivery arrived a week late.", **verified("progadmin")),
            )  # fmt: skip  (awaiting the store manager)
            adjustment_request(
                actor=s["manager"],
                member=members["KL01"][0],
                points=1_200,
                reason=reasons["MISSED_EARN"],
                store=kl,
                evidence=Evidence(
                    justification="Till KL01/3 was offline on Saturday; the receipt was checked.", **verified("manager")
                ),
            )  # fmt: skip  (awaiting the programme administrator)
            adjustment_request(
                actor=s["manager"],
                member=members["KL01"][2],
                points=3_000,
                reason=reasons["PROMOTION"],
                store=kl,
                evidence=Evidence(
                    justification="Anniversary bonus promised in writing by head office; letter attached.",
                    document=document(),
                    **verified("manager"),
                ),
            )  # fmt: skip  (awaiting the administrator and the fraud team)

    # --- alerts, security, consents ------------------------------------------------------------

    def alerts_and_security(self) -> None:
        cashier, kl = self.staff["cashier"], self.stores["KL01"]
        with at(self.ago(6, hours=2)):
            alert = cashier_frequency_alert_raise(
                staff_id=cashier.pk, store_id=kl.pk, redemptions=24,
                threshold=settings.VOUCHERS["cashier_redemptions_alert"],
                window_minutes=settings.VOUCHERS["cashier_redemptions_window_minutes"], now=timezone.now(),
            )  # fmt: skip
        with at(self.ago(5)):
            fraud_alert_close(alert_id=alert.pk, actor=self.staff["fraud"])
        with at(self.ago(3, hours=9)):
            for _ in range(2):
                security_event_record(kind=SecurityEvent.Kind.LOGIN_FAILED, username="manager")
            security_event_record(kind=SecurityEvent.Kind.LOGIN_FAILED, username="adm1n")

    def fraud_cases(self) -> None:
        """Three cases, through the real services: a member's account-takeover case under
        investigation (with a note), a cashier's insider case still new (and overdue), and
        a member's case closed as not fraud."""
        fraud, cashier = self.staff["fraud"], self.staff["cashier"]
        ato, closed = self.members[1], self.members[2]
        with at(self.ago(2, hours=3)):
            raised = alert_raise(
                detector="devices_rapid_change", subjects=[Subject.member(ato.pk)], facts={"devices": 4},
                occurred_at=timezone.now(), dedupe_key=f"demo:devices_rapid_change:member:{ato.pk}",
                severity="high", member_id=ato.pk,
            )  # fmt: skip
        with at(self.ago(2)):
            case = raised.cases[0]
            case_assign(case_id=case.pk, assignee_id=fraud.pk, actor=fraud)
            case_start(case_id=case.pk, actor=fraud)
            case_note(case_id=case.pk, note="Four new devices in a day; waiting for the member's call.", actor=fraud)
        with at(self.ago(4)):
            alert_raise(
                detector="staff_adjust_frequency", subjects=[Subject.staff(cashier.pk)], facts={"count": 6},
                occurred_at=timezone.now(), dedupe_key=f"demo:staff_adjust_frequency:staff:{cashier.pk}",
                staff_id=cashier.pk, store_id=self.stores["KL01"].pk,
            )  # fmt: skip
        with at(self.ago(9)):
            old = alert_raise(
                detector="impossible_travel", subjects=[Subject.member(closed.pk)], facts={"km": 1450, "minutes": 40},
                occurred_at=timezone.now(), dedupe_key=f"demo:impossible_travel:member:{closed.pk}", member_id=closed.pk,
            )  # fmt: skip
        with at(self.ago(8)):
            case_close(
                case_id=old.cases[0].pk, outcome="not_fraud", resolution_reason="benign", actor=fraud,
                note="The member flew from Penang; boarding pass checked.",
            )  # fmt: skip

    def consent_changes(self) -> None:
        """A member changed their mind in the app: email marketing off, offers on."""
        n = next(iter(self.sessions), None)
        if n is None:
            return
        member = self.members[n]
        consents_record(
            member=member, choices={Purpose.EMAIL_MARKETING: False}, source=ConsentRecord.Source.MEMBER,
            session=self.sessions[n], ip="203.0.113.20",
        )  # fmt: skip

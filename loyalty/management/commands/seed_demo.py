"""Demo data for a first run: stores, members, one staff user per role with an MFA device.

Idempotent: running it again keeps what exists, tops up the backup codes and prints
the same log-in details. Refuses to run with DEBUG off: demo passwords are public.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from loyalty.adjustments.models import AdjustmentReason, AdjustmentRequest
from loyalty.adjustments.services import Evidence, adjustment_request
from loyalty.kernel.crypto import encrypt_str
from loyalty.kernel.models import Store, Till
from loyalty.ledger.operations import Actor, points_earn, points_redeem
from members.models import Member
from members.services.membership import member_pii_set
from staffauth.models import StaffUser
from staffauth.roles import CASHIER, FRAUD_ANALYST, PROGRAM_ADMIN, STORE_MANAGER, SYSTEM_ADMIN

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
BACKUP_CODES = 5
# Demo members per store.
MEMBERS_PER_STORE = 4
# Made-up personal data for the demo members (stored encrypted, like real data).
DEMO_NAMES = ["Aisyah Rahman", "Tan Wei Ming", "Priya Subramaniam", "Ahmad Faizal", "Lim Mei Ling", "Ravi Kumar"]


class Command(BaseCommand):
    help = "Load demo stores and staff (one per role, with MFA) and print how to log in."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates accounts with published passwords; it runs only with DEBUG=1.")
        logins = self.seed()
        self.stdout.write(f"Demo data: {Store.objects.count()} stores, {Member.objects.count()} members.")
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

    def seed_points(self, stores) -> None:
        """Some history for every demo member, through the ledger services (idempotent
        keys, so a second run adds nothing): two purchases, one of them months old, and
        one redemption at the till."""
        till, _ = Till.objects.get_or_create(
            store=stores["KL01"], code="DEMO", defaults={"key_id": "demo-till", "secret_encrypted": encrypt_str("demo")}
        )
        actor = Actor(till=till)
        now = timezone.now()
        for n, member in enumerate(Member.objects.order_by("pk")):
            for i, (points, days_ago) in enumerate([(250 + 40 * n, 200), (120 + 15 * n, 3)]):
                points_earn(
                    member=member, points=points, receipt_ref=f"DEMO/{member.pk}/{i}", actor=actor,
                    idempotency_key=f"demo-earn-{member.pk}-{i}", effective_at=now - timedelta(days=days_ago),
                )  # fmt: skip
            points_redeem(member=member, points=50 + 5 * n, actor=actor, idempotency_key=f"demo-redeem-{member.pk}")

    def seed_personal_data(self) -> None:
        """Fake names, phones and emails for demo members that have none yet (idempotent)."""
        for n, member in enumerate(Member.objects.order_by("pk")):
            if member.data_key_wrapped or member.pii_erased_at is not None:
                continue
            name = f"{DEMO_NAMES[n % len(DEMO_NAMES)]} {n + 1}"
            member_pii_set(
                member=member, name=name, phone=f"+60 12-555 {1000 + n:04d}",
                email=f"demo.member{n + 1}@example.com", preferred_channel="sms" if n % 2 else "email",
            )  # fmt: skip

    def seed_adjustments(self, stores) -> None:
        """Adjustments to look at (once): one posted at once, one awaiting a supervisor
        (the programme administrator), one awaiting the administrator and the fraud team."""
        if AdjustmentRequest.objects.exists():
            return
        manager = StaffUser.objects.get(username="manager")
        members = list(Member.objects.filter(home_store=stores["KL01"]).order_by("pk"))
        reasons = {r.code: r for r in AdjustmentReason.objects.all()}
        verified = {
            "verification_method": AdjustmentRequest.Verification.PHONE,
            "verified_by": "manager",
            "verified_at": timezone.now() - timedelta(hours=1),
            "verification_outcome": "Member confirmed the purchase on the phone.",
        }
        adjustment_request(
            actor=manager, member=members[0], points=150, reason=reasons["GOODWILL"], store=stores["KL01"]
        )
        adjustment_request(
            actor=manager, member=members[1], points=1_200, reason=reasons["MISSED_EARN"], store=stores["KL01"],
            evidence=Evidence(justification="Till KL01/3 was offline on Saturday; the receipt was checked.", **verified),
        )  # fmt: skip
        document = SimpleUploadedFile("statement.pdf", b"%PDF-1.4\n% demo justification\n%%EOF\n")
        adjustment_request(
            actor=manager, member=members[2], points=3_000, reason=reasons["PROMOTION"], store=stores["KL01"],
            evidence=Evidence(
                justification="Double-points weekend not applied to a furniture purchase; invoice attached.",
                document=document, **verified,
            ),
        )  # fmt: skip

    @transaction.atomic
    def seed(self) -> list[dict]:
        stores = {}
        for code, name, region in STORES:
            stores[code], _ = Store.objects.get_or_create(code=code, defaults={"name": name, "region": region})
        for store in stores.values():
            for _ in range(MEMBERS_PER_STORE - Member.objects.filter(home_store=store).count()):
                Member.objects.create(home_store=store)
        self.seed_personal_data()
        self.seed_points(stores)
        logins = []
        for username, role, store_codes, password in STAFF:
            user = StaffUser.objects.filter(username=username).first()
            if user is None:
                user = StaffUser.objects.create_user(
                    username=username, password=password, email=f"{username}@demo.invalid"
                )
            user.groups.set([Group.objects.get(name=role.name)])
            user.stores.set([stores[c] for c in store_codes])
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is None:
                device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
            static, _ = StaticDevice.objects.get_or_create(user=user, name="Backup codes", defaults={"confirmed": True})
            missing = BACKUP_CODES - static.token_set.count()
            for _ in range(max(missing, 0)):
                StaticToken.objects.create(device=static, token=StaticToken.random_token())
            logins.append(
                {
                    "role": role.name,
                    "username": username,
                    "password": password,
                    "stores": store_codes,
                    "uri": device.config_url,
                    "now": f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}",
                    "codes": sorted(static.token_set.values_list("token", flat=True)),
                }
            )
        self.seed_adjustments(stores)
        self.seed_vouchers()
        return logins

    def seed_vouchers(self) -> None:
        """A small reward catalogue and a goodwill voucher for the first member (once)."""
        from vouchers.models import Reward, Voucher
        from vouchers.services.issuing import voucher_goodwill_issue

        catalogue = [
            {"name": "RM5 off", "kind": Reward.Kind.FIXED_VALUE, "value_minor": 500, "points_price": 400},
            {"name": "10% off one basket", "kind": Reward.Kind.PERCENTAGE, "percent": 10, "points_price": 900},
            {"name": "Free coffee", "kind": Reward.Kind.FREE_ITEM, "item": "Regular coffee", "points_price": 150},
            {
                "name": "RM100 off (Gold and above)", "kind": Reward.Kind.FIXED_VALUE, "value_minor": 10_000,
                "points_price": 6_000, "min_tier": 3, "stock_remaining": 50, "per_member_limit": 1,
            },
        ]  # fmt: skip
        for reward in catalogue:
            Reward.objects.get_or_create(name=reward["name"], defaults=reward)
        if not Voucher.objects.exists():
            voucher_goodwill_issue(
                staff=StaffUser.objects.get(username="progadmin"),
                member=Member.objects.order_by("pk").first(),
                reward=Reward.objects.get(name="Free coffee"),
                reason="Demo: welcome gift",
            )

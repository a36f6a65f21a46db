"""The fraud drill (FRAUD.md §5): a seeded programme with fraud injected, scored.

``manage.py fraud_drill --seed S --profile ci|bench`` (``fraud.management.commands.fraud_drill``)
calls ``drill_run``. One run:

1. **Population.** Stores, tills, normal staff (cashiers, a manager per store, an HQ
   administrator) and members in three segments: ``normal``, ``family`` (many visits, at
   most the daily earn count) and ``business`` (large baskets, under the daily points
   cap). Older history (the days before the live ones) is written set-wise per segment
   (``earns_bulk_history``), so members have their own baselines. Poisson visits (a lognormal rate per member), lognormal baskets with item lines
   and a tender, 5 % of purchases partly returned days later at the same till, app
   sessions, vouchers bought and redeemed at the till, managers' small adjustments and
   PII reveals. Everything goes through the real services (``points_earn_purchase``,
   ``points_earn_reverse``, ``session_start``, ``voucher_purchase``, ``voucher_redeem``,
   ``adjustment_request``, ``member_pii_reveal``...) at its moment on a time-machine
   clock (``time_machine``), in time order. Staff shifts are rows (``StaffShift``, as the
   test helpers make them): clocking in with a password and OTP is not under test.
2. **Scenarios** (``SCENARIOS``), injected into the same timeline, each with its ground
   truth: subjects, start, end and the detector codes expected to fire.
3. **Batch detectors**, from the registry (``fraud.detectors``: a dict code → callable(as_of);
   ``REGISTRY``/``DETECTORS``, a ``CADENCE`` dict or a ``cadence`` attribute of MB/NB/MO,
   NB by default), run inside the timeline at their cadence, as the scheduler would:
   MB every ``Profile.mb_step_hours``, NB at 01:00 local, MO on the 1st.
4. **Scoring** (``drill_score``): per scenario recall (expected detectors that fired on
   its subjects between its start and end + ``grace``), precision of its detectors (their
   alerts on ground-truth subjects in their windows ÷ their alerts, those on innocent
   family or business members apart: those are their segment's false positives; the
   figure over every segment is reported beside it), time to first
   signal and to case; false positives per 1,000 members of each segment (members with
   an alert or signal and in no scenario). A detector neither registered, nor a known
   alert kind, nor raised during the run is ``missing``: the scenario's figure for it
   is ``pending``, never a pass.

Deterministic: one ``random.Random(f"{seed}:{stream}")`` per stream, events sorted by
(time, sequence), idempotency keys derived from the seed, subjects reported by drill
labels (``member#17``, ``staff:cashier-2``), never database ids, JSON with sorted keys.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import random
import resource
import time
import traceback
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from members.numbers import check_digit

logger = logging.getLogger(__name__)

# Evidence that is not an alert: the ledger's refusal events (``LedgerRefusalEvent``)
# that a TX detector leaves (FRAUD.md rows 1 and 15). Detector code → refusal codes.
REFUSAL_DETECTORS: dict[str, frozenset[str]] = {
    "velocity": frozenset({"velocity_limit", "daily_earn_transactions_exceeded", "daily_earn_points_exceeded"}),
    "refund_tender_mismatch": frozenset({"refund_tender_mismatch"}),
}
SEGMENTS = ("normal", "family", "business")
# Per segment: visits beside the profile's median rate; baskets (median in minor units,
# lognormal sigma) and their cap.
SEGMENT_VISITS = {"normal": 1.0, "family": 4.0, "business": 2.0}
# A normal basket's sigma decides earn_above_baseline's false positives: at 0.8 one
# normal visit in ~400 passes 500 points over a RM60 pattern (precision ~89 % on ci).
SEGMENT_BASKETS = {"normal": (6_000, 0.6), "family": (6_000, 0.6), "business": (90_000, 0.5)}
BASKET_CAP = {"normal": 150_000, "family": 150_000, "business": 250_000}
CADENCES = ("MB", "NB", "MO")


@dataclass(frozen=True)
class Profile:
    name: str
    members: int  # the whole population
    days: int  # the period
    live_members: int  # members whose activity goes through the services
    live_days: int  # the last days done through the services (older history in bulk)
    stores: int
    cashiers_per_store: int
    visits_per_week: float  # median of the per-member lognormal visit rate
    mb_step_hours: int
    grace_days: int = 2  # a scenario's window for detection: [start, end + grace]


PROFILES = {
    "ci": Profile(
        name="ci", members=200, days=60, live_members=200, live_days=30, stores=3, cashiers_per_store=2,
        visits_per_week=1.2, mb_step_hours=6,
    ),
    "bench": Profile(
        name="bench", members=100_000, days=90, live_members=3_000, live_days=7, stores=40, cashiers_per_store=3,
        visits_per_week=1.2, mb_step_hours=6,
    ),
}  # fmt: skip

# The drill's clock: its period ends here (a fixed moment, so that two runs agree).
DEFAULT_END = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@dataclass
class Truth:
    """One injected scenario's ground truth. ``subjects`` are subject keys (``member:12``),
    ``client:*`` matching any API client; ``labels`` the same subjects as the drill names them."""

    scenario: str
    subjects: set[str]
    start: datetime
    end: datetime
    expected: tuple[str, ...]


@dataclass(order=True)
class Event:
    when: datetime
    seq: int
    run: Callable[[], Any] = field(compare=False)
    stream: str = field(default="", compare=False)


@dataclass
class Stats:
    ops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    detector_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    detector_runs: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def detector_registry() -> dict[str, tuple[Callable[..., Any], str]]:
    """The batch detectors as the scheduler sees them: code → (callable(as_of), cadence).
    Empty while ``fraud.detectors`` does not exist."""
    import importlib

    try:
        detectors = importlib.import_module("fraud.detectors")
    except ImportError:
        return {}
    found: dict[str, Any] = {}
    for name in ("REGISTRY", "DETECTORS", "registry"):
        value = getattr(detectors, name, None)
        if callable(value) and not isinstance(value, dict):
            value = value()
        if isinstance(value, dict):
            found = value
            break
    cadence = getattr(detectors, "CADENCE", {}) or {}
    out = {}
    for code in sorted(found):
        fn = found[code]
        when = str(cadence.get(code) or getattr(fn, "cadence", "NB")).upper()
        out[code] = (fn, when if when in CADENCES else "NB")
    return out


def known_detectors(raised: Iterable[str]) -> set[str]:
    """Detectors that exist: registered batch ones, the alert kinds services raise
    (``fraud.services.ALERT_KINDS``, ``fraud.models.KIND_LABELS``), refusal-based ones,
    and any kind raised during the run (a post-commit detector is seen when it fires)."""
    from fraud.models import KIND_LABELS
    from fraud.services import ALERT_KINDS

    return set(detector_registry()) | set(ALERT_KINDS) | set(KIND_LABELS) | set(REFUSAL_DETECTORS) | set(raised)


# --- the population ------------------------------------------------------------------------------


class Drill:
    def __init__(self, *, seed: int, profile: Profile, end: datetime = DEFAULT_END, out=None):
        self.seed, self.profile = seed, profile
        self.tz = ZoneInfo(settings.TIME_ZONE)
        local_end = end.astimezone(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        self.end = local_end
        self.start = local_end - timedelta(days=profile.days)
        self.live_start = local_end - timedelta(days=profile.live_days)
        self.events: list[Event] = []
        self.playing = False
        self.seq = 0
        self.stats = Stats()
        self.truths: list[Truth] = []
        self.labels: dict[str, str] = {}  # subject key → drill label
        self.segment: dict[int, str] = {}  # member pk → segment
        self.out = out or (lambda line: None)
        self.sessions: dict[int, Any] = {}
        self.tenders: dict[int, str] = {}
        self.purchases: dict[int, list[tuple[str, int, Any]]] = defaultdict(list)

    # random streams: one per purpose, seeded from the drill's seed
    def rng(self, stream: str) -> random.Random:
        return random.Random(f"{self.seed}:{stream}")  # noqa: S311  (a reproducible drill, not a secret)

    def key(self, *parts: Any) -> str:
        return ":".join(["drill", str(self.seed), *(str(p) for p in parts)])

    def at(self, when: datetime, run: Callable[[], Any], stream: str = "") -> None:
        self.seq += 1
        if self.playing:
            heapq.heappush(self.events, Event(max(when, timezone.now()), self.seq, run, stream))
        else:
            self.events.append(Event(when, self.seq, run, stream))

    def label(self, subject_key: str, label: str) -> None:
        self.labels[subject_key] = label

    # --- set-up ---------------------------------------------------------------------------------

    def setup(self) -> None:
        from django.contrib.auth.models import Group

        from loyalty.api.auth import till_create
        from loyalty.kernel.models import Store
        from staffauth.models import StaffUser
        from staffauth.roles import CASHIER, PROGRAM_ADMIN, STORE_MANAGER
        from vouchers.models import Reward

        prefix = f"DR{self.seed % 1000:03d}"
        if Store.objects.filter(code__startswith=prefix).exists():
            raise DrillRefused("The drill runs on a fresh database (its stores exist already).")
        self.stores, self.tills, self.till_secrets = [], [], {}
        self.cashiers: dict[int, list[Any]] = {}
        self.managers: dict[int, Any] = {}
        groups = {role: Group.objects.get(name=role.name) for role in (CASHIER, STORE_MANAGER, PROGRAM_ADMIN)}

        def staff(username: str, role, store=None):
            user = StaffUser.objects.create_user(username=f"{prefix.lower()}.{username}", password=None)
            user.groups.set([groups[role]])
            if store is not None:
                user.stores.set([store])
            self.label(f"staff:{user.pk}", f"staff:{username}")
            return user

        for s in range(self.profile.stores):
            store = Store.objects.create(code=f"{prefix}{s:03d}", name=f"Drill store {s}", region="Drill")
            self.label(f"store:{store.pk}", f"store:{s}")
            self.stores.append(store)
            till, secret = till_create(store=store, code="T1")
            self.label(f"till:{till.pk}", f"till:{s}/T1")
            self.tills.append(till)
            self.till_secrets[till.pk] = secret
            self.cashiers[store.pk] = [
                staff(f"cashier-{s}-{c}", CASHIER, store) for c in range(self.profile.cashiers_per_store)
            ]
            self.managers[store.pk] = staff(f"manager-{s}", STORE_MANAGER, store)
        self.hq = staff("hq", PROGRAM_ADMIN)
        self.reward, _ = Reward.objects.get_or_create(
            name="Drill RM5 off", defaults={"kind": Reward.Kind.FIXED_VALUE, "value_minor": 500, "points_price": 400}
        )
        self.coffee, _ = Reward.objects.get_or_create(
            name="Drill coffee", defaults={"kind": Reward.Kind.FREE_ITEM, "item": "Coffee", "points_price": 150}
        )
        self.shifts: dict[tuple[int, Any], Any] = {}
        # The adjustment reasons a migration ships; made again when a flushed database lost them.
        from loyalty.adjustments.models import AdjustmentReason

        self.reason, _ = AdjustmentReason.objects.get_or_create(
            code="GOODWILL", defaults={"label": "Goodwill gesture (service recovery)"}
        )

    def shift(self, cashier, store_index: int):
        """The cashier's open shift at the store's till (a row, as the test helpers make it)."""
        import secrets

        from vouchers.models import StaffShift
        from vouchers.services.shifts import shift_end, token_hash

        # One shift per cashier and local day (a shift ends by itself after some hours).
        day = timezone.localdate()
        shift = self.shifts.get((cashier.pk, day))
        if shift is None:
            for (staff_id, _), open_shift in list(self.shifts.items()):
                if staff_id == cashier.pk and open_shift.ended_at is None:
                    shift_end(shift=open_shift)
            till = self.tills[store_index]
            shift = StaffShift.objects.create(
                staff=cashier, store=till.store, till=till, token_hash=token_hash(secrets.token_urlsafe(32)),
                started_at=timezone.now(),
            )  # fmt: skip
            self.shifts[(cashier.pk, day)] = shift
        return shift

    def members_create(self) -> None:
        """Members enrol before the period through ``member_create`` (made-up personal data,
        encrypted as real data is); the bench profile's rest arrive in bulk."""
        import time_machine

        from members.services.membership import member_create

        rng = self.rng("members")
        self.members: list[Any] = []
        self.home: dict[int, int] = {}
        self.rate: dict[int, float] = {}
        live = self.profile.live_members
        with time_machine.travel(self.start - timedelta(days=120), tick=False):
            for n in range(live):
                s = n % len(self.stores)
                member = member_create(
                    home_store=self.stores[s], name=f"Drill Member {n}", phone=f"+6012{2_000_000 + (self.seed * 100_000 + n) % 7_000_000}",
                    email=f"drill{self.seed}.m{n}@example.invalid", preferred_channel="email",
                )  # fmt: skip
                self._member_add(member, n, s, rng)
        if self.profile.members > live:
            self._members_bulk(self.profile.members - live, rng)

    def _member_add(self, member, n: int, s: int, rng: random.Random) -> None:
        roll = rng.random()
        segment = "family" if roll < 0.10 else "business" if roll < 0.15 else "normal"
        self.members.append(member)
        self.segment[member.pk] = segment
        self.home[member.pk] = s
        base = self.profile.visits_per_week / 7
        factor = SEGMENT_VISITS[segment]
        self.rate[member.pk] = min(base * factor * rng.lognormvariate(0, 0.5), 2.5)
        self.tenders[member.pk] = f"tok_{self.seed}_{n}"
        self.label(f"member:{member.pk}", f"member#{n}")

    def _members_bulk(self, count: int, rng: random.Random) -> None:
        """The bench's other members, written set-wise by the ledger's bulk writer (no
        personal data; counted in the false positives, their history the bulk history's)."""
        from loyalty.ledger.services.bulk import members_bulk_create

        self.bulk_members = members_bulk_create(store_ids=[s.pk for s in self.stores], count=count)
        for pk in self.bulk_members:
            roll = rng.random()
            self.segment[pk] = "family" if roll < 0.10 else "business" if roll < 0.15 else "normal"

    # --- bulk history (bench) ------------------------------------------------------------------------

    def history_bulk(self) -> None:
        """Earns before the live days, for every member, set-wise
        (``loyalty.ledger.services.bulk.earns_bulk_history``: its columns are the
        pre-till-data ones, the newer take their database defaults)."""
        from fraud.detectors.earning import member_day_stats_refresh
        from loyalty.ledger.services.bulk import earns_bulk_history

        days = (self.live_start - self.start).days
        if days <= 0:
            return
        started = time.monotonic()
        written = 0
        for k, segment in enumerate(SEGMENTS):  # each segment its visits and baskets, as live
            members = sorted(pk for pk, seg in self.segment.items() if seg == segment)
            if not members:
                continue
            written = earns_bulk_history(
                member_ids=members, till_of_store={t.store_id: t.pk for t in self.tills}, start=self.start,
                days=days, visits_per_day=min(0.9, self.profile.visits_per_week / 7 * SEGMENT_VISITS[segment]),
                basket_minor=SEGMENT_BASKETS[segment][0], sigma=SEGMENT_BASKETS[segment][1] / 2,
                seed=((self.seed % 1000) / 1000.0 + k / 10_000) % 1.0,
            )  # fmt: skip
        # The members outside the live sample keep shopping through the live days too (in bulk,
        # written ahead): a store's daily issuance stays what its history taught the
        # detectors, so a store-level injection is judged against a real day, not against
        # the live sample's few per cent of it.
        bulk = set(getattr(self, "bulk_members", ()))
        for k, segment in enumerate(SEGMENTS):
            members = sorted(pk for pk, seg in self.segment.items() if seg == segment and pk in bulk)
            if members:
                written = earns_bulk_history(  # the bulk earns in the ledger so far
                    member_ids=members, till_of_store={t.store_id: t.pk for t in self.tills}, start=self.live_start,
                    days=self.profile.live_days,
                    visits_per_day=min(0.9, self.profile.visits_per_week / 7 * SEGMENT_VISITS[segment]),
                    basket_minor=SEGMENT_BASKETS[segment][0], sigma=SEGMENT_BASKETS[segment][1] / 2,
                    seed=((self.seed % 1000) / 1000.0 + 0.5 + k / 10_000) % 1.0,
                )  # fmt: skip
        # What the nightly job would have kept up over those days: the members' day figures.
        member_day_stats_refresh(first_day=self.start.date(), last_day=(self.live_start - timedelta(days=1)).date())
        self.stats.ops["earn_bulk"] = written
        self.out(f"  bulk history: {written:,} earns over {days} days for {len(self.segment):,} members "
                 f"({time.monotonic() - started:.1f}s)")  # fmt: skip

    # --- normal activity -----------------------------------------------------------------------------

    def population(self) -> None:
        rng = self.rng("visits")
        days = self.profile.live_days
        for member in self.members:
            if member.pk in self.scenario_members:
                continue
            segment = self.segment[member.pk]
            s = self.home[member.pk]
            cap = 3 if segment == "family" else 2
            for d in range(days):
                visits = min(_poisson(rng, self.rate[member.pk]), cap)
                day = self.live_start + timedelta(days=d)
                for v in range(visits):
                    when = day + timedelta(hours=9 + rng.random() * 11)
                    median, sigma = SEGMENT_BASKETS[segment]
                    amount = int(min(rng.lognormvariate(math.log(median), sigma), BASKET_CAP[segment]))
                    store = s if rng.random() < 0.85 else rng.randrange(len(self.stores))
                    self.purchase(member, store, when, amount, f"p{d}.{v}", rng, returns=rng.random() < 0.05)
            if rng.random() < 0.5:  # an app user: a session on their phone, vouchers
                first = self.live_start + timedelta(days=rng.random() * min(days, 5), hours=8)
                self.at(first, lambda m=member: self.login(m, f"phone-{m.pk}", f"10.{self.home[m.pk]}.0.1"))
                for k in range(max(1, days // 15)):
                    when = first + timedelta(days=(k + 1) * 10 + rng.random() * 3)
                    if when < self.end - timedelta(days=1):
                        self.at(when, lambda m=member, k=k, w=when: self.voucher_cycle(m, k, w, rng_key=f"{m.pk}.{k}"))
        staff_rng = self.rng("staff")
        for s, store in enumerate(self.stores):
            manager = self.managers[store.pk]
            local = [m for m in self.members if self.home[m.pk] == s and m.pk not in self.scenario_members]
            for d in range(days):
                day = self.live_start + timedelta(days=d)
                if local and staff_rng.random() < 0.25:
                    target = local[staff_rng.randrange(len(local))]
                    points = staff_rng.randrange(50, 300)
                    self.at(
                        day + timedelta(hours=14 + staff_rng.random() * 3),
                        lambda m=manager, t=target, p=points, st=store: self.adjust(m, t, p, st),
                    )
                for _r in range(staff_rng.randrange(0, 3) if local else 0):
                    target = local[staff_rng.randrange(len(local))]
                    self.at(
                        day + timedelta(hours=10 + staff_rng.random() * 8),
                        lambda m=manager, t=target: self.reveal(m, t),
                    )

    def purchase(self, member, s: int, when: datetime, amount: int, tag: str, rng: random.Random, *, returns=False,
                 skus: list[str] | None = None, tender: str | None = None, then_return_at: tuple[int, float] | None = None):  # fmt: skip
        till = self.tills[s]
        receipt = f"D{self.seed}/{member.pk}/{tag}"
        lines = max(1, min(5, int(rng.expovariate(0.6)) + 1))
        skus = skus or [f"SKU-{rng.randrange(5_000)}" for _ in range(lines)]
        share = [amount // len(skus)] * len(skus)
        share[0] += amount - sum(share)
        items = [{"sku": sku, "qty": 1, "amount_minor": a} for sku, a in zip(skus, share, strict=True)]
        tender = tender or self.tenders[member.pk]
        self.at(when, lambda: self.earn(member, till, receipt, amount, items, tender, tag))
        if returns:
            back = when + timedelta(days=1 + rng.random() * 9)
            if back < self.end:
                part = items[:1]
                self.at(back, lambda: self.return_(member, till, receipt, part, tender, f"{tag}.r"))
        return receipt, items

    # --- the service calls ----------------------------------------------------------------------------

    def earn(self, member, till, receipt: str, amount: int, items, tender: str, tag: str) -> Any:
        from loyalty.ledger.operations import Actor, points_earn_purchase
        from loyalty.ledger.tilldata import till_data

        outcome = points_earn_purchase(
            member=member, amount_minor=amount, receipt_ref=receipt, actor=Actor(till=till),
            idempotency_key=self.key("earn", member.pk, tag), till=till_data(items=items, tender_ref=tender, receipt_presented=True),
        )  # fmt: skip
        self._count("earn", outcome)
        return outcome

    def return_(self, member, till, receipt: str, items, tender: str, tag: str, *, receipt_presented=True) -> Any:
        from loyalty.ledger.operations import Actor, points_earn_reverse
        from loyalty.ledger.tilldata import till_data

        amount = sum(i["amount_minor"] for i in items)
        outcome = points_earn_reverse(
            member=member, receipt_ref=receipt, amount_minor=amount, actor=Actor(till=till),
            idempotency_key=self.key("return", member.pk, tag),
            till=till_data(items=items, tender_ref=tender, receipt_presented=receipt_presented),
        )  # fmt: skip
        self._count("return", outcome)
        return outcome

    def _count(self, op: str, outcome) -> None:
        if outcome.ok:
            self.stats.ops[op] += 1
        else:
            self.stats.refused[f"{op}:{outcome.error_code}"] += 1

    def login(self, member, device: str, ip: str):
        from members.models import MemberSession
        from members.services.sessions import session_start

        try:
            tokens = session_start(member=member, channel=MemberSession.Channel.APP, device_fingerprint=device,
                                   device_label="Drill phone", ip=ip)  # fmt: skip
        except Exception as refused:  # noqa: BLE001  (a refused login is a drill figure, not a crash)
            self.stats.refused[f"login:{getattr(refused, 'code', type(refused).__name__)}"] += 1
            return None
        self.stats.ops["login"] += 1
        self.sessions[member.pk] = MemberSession.objects.get(pk=tokens.session_id)
        return tokens

    def voucher_cycle(self, member, k: int, when: datetime, *, rng_key: str) -> None:
        """A voucher bought in the app when the balance allows, redeemed at the home till
        within days."""
        from loyalty.ledger.selectors import member_balance_figures

        session = self.sessions.get(member.pk)
        if session is None or member_balance_figures(member)["available"] < 1_000:
            return
        voucher = self.voucher_buy(member, session, self.reward, f"v{k}")
        if voucher is None:
            return
        rng = self.rng(f"redeem:{rng_key}")
        s = self.home[member.pk]
        cashier = self.cashiers[self.stores[s].pk][rng.randrange(self.profile.cashiers_per_store)]
        later = when + timedelta(days=1 + rng.random() * 3)
        if later < self.end:
            self.at(later, lambda: self.redeem_voucher(cashier, s, voucher, f"rv{rng_key}"))

    def voucher_buy(self, member, session, reward, tag: str):
        from vouchers.models import Voucher
        from vouchers.services.issuing import voucher_purchase

        try:
            voucher_purchase(member=member, reward_id=reward.pk, idempotency_key=self.key("voucher", member.pk, tag),
                             session=session)  # fmt: skip
        except Exception as refused:  # noqa: BLE001
            self.stats.refused[f"voucher_purchase:{getattr(refused, 'code', type(refused).__name__)}"] += 1
            return None
        self.stats.ops["voucher_purchase"] += 1
        return Voucher.objects.filter(member=member).order_by("-issued_at", "-pk").first()

    def redeem_voucher(self, cashier, s: int, voucher, tag: str) -> bool:
        from vouchers.services.redemption import voucher_redeem

        try:
            voucher_redeem(
                till=self.tills[s], shift=self.shift(cashier, s), idempotency_key=self.key("redeem", tag),
                code=voucher.code, member_loyalty_number=voucher.member.loyalty_number, sampler=lambda: False,
            )  # fmt: skip
        except Exception as refused:  # noqa: BLE001
            self.stats.refused[f"voucher_redeem:{getattr(refused, 'code', type(refused).__name__)}"] += 1
            return False
        self.stats.ops["voucher_redeem"] += 1
        return True

    def adjust(self, actor, member, points: int, store) -> None:
        from loyalty.adjustments.services import adjustment_request

        try:
            adjustment_request(actor=actor, member=member, points=points, reason=self.reason, store=store)
        except Exception as refused:  # noqa: BLE001
            self.stats.refused[f"adjust:{getattr(refused, 'code', type(refused).__name__)}"] += 1
            return
        self.stats.ops["adjust"] += 1

    def reveal(self, actor, member) -> None:
        """A reveal as the member page's reveal button makes it: a throttle that begins
        raises the fraud team's alert (``members.admin``'s entry point does the same)."""
        from fraud.services import pii_reveal_volume_alert_raise
        from members.services.membership import member_pii_reveal
        from members.services.pii_watch import PiiRevealThrottled

        try:
            member_pii_reveal(member=member, field="phone", actor=actor)
        except PiiRevealThrottled as refusal:
            if refusal.facts.get("newly"):
                pii_reveal_volume_alert_raise(staff_id=actor.pk, facts=refusal.facts)
            self.stats.refused["reveal:pii_reveal_throttled"] += 1
            return
        except Exception as refused:  # noqa: BLE001
            self.stats.refused[f"reveal:{getattr(refused, 'code', type(refused).__name__)}"] += 1
            return
        self.stats.ops["reveal"] += 1

    # --- batch detectors, as the scheduler runs them -------------------------------------------------

    def detector_schedule(self) -> None:
        registry = detector_registry()
        if not registry:
            return
        step = timedelta(hours=self.profile.mb_step_hours)
        moment = self.live_start + step
        while moment <= self.end + timedelta(hours=1):
            local = moment.astimezone(self.tz)
            due = [code for code, (_, cadence) in registry.items() if cadence == "MB"]
            if due:
                self.at(moment, lambda m=moment, d=tuple(due): self.detectors_run(d, m))
            moment += step
        for d in range(self.profile.live_days + 1):
            night = self.live_start + timedelta(days=d, hours=1)
            nightly = [c for c, (_, cad) in registry.items() if cad == "NB"]
            local = night.astimezone(self.tz)
            if local.day == 1:
                nightly += [c for c, (_, cad) in registry.items() if cad == "MO"]
            if nightly:
                self.at(night, lambda m=night, n=tuple(nightly): self.nightly(n, m))
        # After the period: every detector once more, for what the last day did.
        self.at(self.end + timedelta(hours=1, minutes=30), lambda: self.detectors_run(tuple(registry), None))

    def nightly(self, codes: tuple[str, ...], as_of: datetime) -> None:
        """The nightly job's run (``fraud.tasks.detectors_nightly_task``): the last two
        local days' member figures, then the nightly detectors."""
        from fraud.detectors.earning import member_day_stats_nightly

        member_day_stats_nightly(as_of.astimezone(self.tz).date())
        self.detectors_run(codes, as_of)

    def detectors_run(self, codes: tuple[str, ...], as_of: datetime | None) -> None:
        registry = detector_registry()
        as_of = as_of or timezone.now()
        for code in codes:
            fn = registry[code][0]
            started = time.perf_counter()
            try:
                fn(as_of=as_of)
            except TypeError:
                fn(as_of)
            except Exception:  # a failing detector is a drill finding, not the end of the drill
                logger.exception("fraud drill: detector %s failed", code)
                self.stats.errors[f"detector:{code}"] += 1
            self.stats.detector_seconds[code] += time.perf_counter() - started
            self.stats.detector_runs[code] += 1

    # --- the run ------------------------------------------------------------------------------------

    def play(self) -> None:
        """Every event in time order, each at its moment on the travelled clock."""
        import time_machine

        heapq.heapify(self.events)  # events may schedule events (``at`` pushes while playing)
        self.playing = True
        with time_machine.travel(self.events[0].when if self.events else self.end, tick=False) as traveller:
            while self.events:
                event = heapq.heappop(self.events)
                traveller.move_to(event.when)
                try:
                    event.run()
                except DrillRefused:
                    raise
                except Exception as error:  # noqa: BLE001  (an unexpected refusal is a figure, not a crash)
                    # Named by the drill's own frame it went through last: "DoesNotExist@voucher_cycle".
                    frames = [f.name for f in traceback.extract_tb(error.__traceback__) if f.filename == __file__]
                    self.stats.errors[f"{type(error).__name__}@{frames[-1] if frames else '?'}"] += 1


class DrillRefused(Exception):
    pass


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's Poisson draw (small rates)."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- injected scenarios ------------------------------------------------------------------------------

# Scenario → the detectors expected to fire on its subjects (FRAUD.md §1 codes; "velocity"
# and "refund_tender_mismatch" are the ledger's refusal events).
SCENARIOS: dict[str, tuple[str, ...]] = {
    "ato": ("devices_rapid_change", "redemption_deviation"),
    "token_theft": ("refresh_token_reuse",),
    "salami": ("adjust_salami",),
    "store_insider": ("store_issue_cap",),
    "return_cycle": ("return_cycle",),
    "unmatched_returns": ("return_unmatched",),
    "tender_mismatch": ("return_tender_mismatch", "refund_tender_mismatch"),
    "enumeration": ("enumeration_404",),
    "pii_harvest": ("pii_reveal_volume",),
    "linked_cashier": ("staff_linked_accounts",),
    "earn_spike": ("earn_above_baseline", "velocity"),
    "enrolment_farm": ("enrolment_farm",),
    "voucher_rescan": ("voucher_rescan",),
    "cashier_frequency": ("cashier_redemption_frequency",),
}


class Scenarios:
    """The injections: each picks its actors with its own random stream, schedules its
    events and records its ``Truth``. Fraudsters' own members (accomplices, cyclers) do
    nothing else; victims keep their normal lives."""

    def __init__(self, drill: Drill):
        self.d = drill
        self.rng = drill.rng("scenarios")
        members = list(drill.members)
        self.rng.shuffle(members)
        self.pool = [m for m in members if drill.segment[m.pk] == "normal"]
        self.business = [m for m in members if drill.segment[m.pk] == "business"]
        self.taken: set[int] = set()

    def take(self, n: int, pool=None) -> list:
        picked = [m for m in (pool or self.pool) if m.pk not in self.taken][:n]
        if len(picked) < n:
            raise DrillRefused("Too few members for the scenarios: raise the profile's live members.")
        self.taken.update(m.pk for m in picked)
        return picked

    def moment(self, lo: float = 0.5, hi: float = 0.8, hour: float = 11) -> datetime:
        days = self.d.profile.live_days
        day = int(days * lo + self.rng.random() * days * (hi - lo))
        return self.d.live_start + timedelta(days=day, hours=hour)

    def truth(self, name: str, subjects: Iterable[str], start: datetime, end: datetime) -> Truth:
        keys = set(subjects)
        truth = Truth(name, keys, start, end, SCENARIOS[name])
        self.d.truths.append(truth)
        return truth

    def plan(self) -> set[int]:
        """Choose the fraudsters' own members (kept out of the normal activity)."""
        self.own = {
            "salami": self.take(2),
            "store_insider": self.take(12),
            "return_cycle": self.take(1),
            "unmatched_returns": self.take(3),
            "tender_mismatch": self.take(1),
            "linked_cashier": self.take(1),
            "voucher_rescan": self.take(1),
        }
        # Victims keep living normally (their baselines are their own history).
        self.victims = {
            "earn_spike": self.take(1),
            "cashier_frequency": self.take(22),
        }
        return {m.pk for group in self.own.values() for m in group}

    def inject(self) -> None:
        for name in SCENARIOS:
            getattr(self, name)()

    # --- one method per scenario --------------------------------------------------------------------

    def ato(self) -> None:
        """The victim: at the attack, the business member (else member) with the most points
        available among the candidates (an attacker goes for a full account)."""
        d = self.d
        start = self.moment(0.6, 0.8, hour=2)
        end = start + timedelta(hours=4)
        truth = self.truth("ato", [], start, end)

        def attack() -> None:
            victim = self.richest()
            truth.subjects.add(f"member:{victim.pk}")
            for k in range(3):  # three unknown phones in three hours, three networks
                d.at(start + timedelta(hours=k),
                     lambda k=k: d.login(victim, f"ato-{d.seed}-{k}", f"198.51.{100 + k}.7"))  # fmt: skip
            d.at(end, lambda: self._redeem_share(victim, "ato", floor=2_100))

        d.at(start, attack)

    def richest(self):
        """At the attack: the member in no scenario with the most points available (an
        attacker goes for a full account); taken from then on."""
        from loyalty.ledger.selectors import member_balance_figures

        free = [m for m in self.d.members if m.pk not in self.taken]
        victim = max(free, key=lambda m: (member_balance_figures(m)["available"], -m.pk))
        self.taken.add(victim.pk)
        return victim

    def _redeem_share(self, member, tag: str, *, floor: int) -> None:
        from loyalty.ledger.operations import Actor, points_redeem
        from loyalty.ledger.selectors import member_balance_figures

        points = max(floor, member_balance_figures(member)["available"] * 45 // 100)
        outcome = points_redeem(member=member, points=points, actor=Actor(member=True),
                                idempotency_key=self.d.key("redeem", tag), reason="drill")  # fmt: skip
        self.d._count("redeem", outcome)

    def token_theft(self) -> None:
        from members.services.sessions import session_refresh

        d = self.d
        start = self.moment(0.5, 0.8, hour=8)
        device = f"victim-{d.seed}"
        truth = self.truth("token_theft", [], start, start + timedelta(hours=2))
        victims: list[Any] = []

        def theft() -> None:
            victims.append(self.richest())
            victim = victims[0]
            truth.subjects.add(f"member:{victim.pk}")
            tokens = d.login(victim, device, "10.9.0.1")
            if tokens is None:
                return
            session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=device)
            try:  # the copied token (and the copied fingerprint) used again: reuse
                session_refresh(refresh_token=tokens.refresh_token, device_fingerprint=device)
            except Exception as reused:  # noqa: BLE001
                d.stats.refused[f"refresh:{getattr(reused, 'code', type(reused).__name__)}"] += 1

        d.at(start, theft)
        d.at(start + timedelta(hours=2), lambda: victims and self._redeem_share(victims[0], "theft", floor=200))

    def salami(self) -> None:
        d = self.d
        store = d.stores[0]
        manager = d.managers[store.pk]
        a, b = self.own["salami"]
        start = self.moment(0.3, 0.4, hour=15)
        plan = [(0, a, 480), (1, b, 495), (3, a, 470), (4, b, 460), (7, a, 490), (8, b, 485), (10, a, 475)]
        for day, member, points in plan:
            d.at(start + timedelta(days=day), lambda m=member, p=points: d.adjust(manager, m, p, store))
        subjects = [f"staff:{manager.pk}", f"member:{a.pk}", f"member:{b.pk}"]
        self.truth("salami", subjects, start, start + timedelta(days=10))

    def store_insider(self) -> None:
        d = self.d
        s = len(d.stores) - 1
        store, till = d.stores[s], d.tills[s]
        rng = d.rng("store_insider")
        start = self.moment(0.6, 0.8, hour=10)
        for i, member in enumerate(self.own["store_insider"]):
            for k in range(2):
                when = start + timedelta(minutes=20 * i + 5 * k)
                d.purchase(member, s, when, 400_000, f"ins{k}", rng)
        subjects = [f"store:{store.pk}", f"till:{till.pk}", *(f"member:{m.pk}" for m in self.own["store_insider"])]
        self.truth("store_insider", subjects, start, start + timedelta(hours=5))

    def return_cycle(self) -> None:
        d, (member,) = self.d, self.own["return_cycle"]
        rng = d.rng("return_cycle")
        # three cycles of 5 days fit 30 live days (ci); shorter live days (the bench's 7)
        # take them faster, so that all three fall inside the period
        pace = min(1.0, d.profile.live_days / 20)
        start = self.moment(0.2, 0.3, hour=12) if pace == 1.0 else self.moment(0.0, 0.1, hour=12)
        sku = f"SKU-CYCLE-{d.seed}"
        when = start
        for cycle in range(3):
            receipt, items = d.purchase(member, 0, when, 45_000, f"cyc{cycle}", rng, skus=[sku])
            back = when + timedelta(days=2 * pace)
            d.at(
                back,
                lambda r=receipt, i=items, c=cycle: d.return_(
                    member, d.tills[1], r, i, d.tenders[member.pk], f"cyc{c}"
                ),
            )
            when = back + timedelta(days=3 * pace)
        self.truth("return_cycle", [f"member:{member.pk}"], start, when)

    def unmatched_returns(self) -> None:
        d = self.d
        till = d.tills[1]
        start = self.moment(0.5, 0.8, hour=10)
        for k in range(6):
            member = self.own["unmatched_returns"][k % 3]
            items = [{"sku": f"SKU-UN-{k}", "qty": 1, "amount_minor": 9_900}]
            d.at(start + timedelta(minutes=40 * k),
                 lambda m=member, i=items, k=k: d.return_(m, till, f"FAKE/{d.seed}/{k}", i, f"tok_fake_{k}", f"un{k}",
                                                           receipt_presented=False))  # fmt: skip
        subjects = [f"till:{till.pk}", *(f"member:{m.pk}" for m in self.own["unmatched_returns"])]
        self.truth("unmatched_returns", subjects, start, start + timedelta(hours=4))

    def tender_mismatch(self) -> None:
        d, (member,) = self.d, self.own["tender_mismatch"]
        rng = d.rng("tender")
        start = self.moment(0.4, 0.7, hour=13)
        receipt, items = d.purchase(member, 2 % len(d.stores), start, 80_000, "tm", rng)
        d.at(start + timedelta(days=2),
             lambda: d.return_(member, d.tills[2 % len(d.tills)], receipt, items, f"tok_other_{d.seed}", "tm"))  # fmt: skip
        self.truth("tender_mismatch", [f"member:{member.pk}"], start, start + timedelta(days=2))

    def enumeration(self) -> None:
        d = self.d
        start = self.moment(0.5, 0.8, hour=21)
        self.enum_till: list[Any] = []

        def probe_till() -> None:
            from loyalty.api.auth import till_create

            till, secret = till_create(store=d.stores[0], code="T9")
            d.till_secrets[till.pk] = secret
            d.label(f"till:{till.pk}", "till:0/T9")
            self.enum_till.append(till)

        d.at(start - timedelta(minutes=1), probe_till)
        rng = d.rng("enumeration")
        for k in range(30):
            # Well-formed numbers (99, Luhn) that nobody holds: a 404 each, as guessing gives.
            body = "99" + "".join(str(rng.randrange(10)) for _ in range(13))
            number = body + check_digit(body)
            d.at(start + timedelta(seconds=6 * k), lambda n=number, k=k: self._probe(n, k))
        truth = self.truth("enumeration", ["client:*"], start, start + timedelta(minutes=3))
        d.at(start, lambda: truth.subjects.add(f"till:{self.enum_till[0].pk}") if self.enum_till else None)

    def _probe(self, number: str, k: int) -> None:
        from django.test import Client

        from loyalty.api.auth import signature_compute

        d, till = self.d, self.enum_till[0]
        path, body = "/api/v1/pos/members/balance", json.dumps({"loyalty_number": number}).encode()
        stamp = str(int(time.time()))
        headers = {
            "HTTP_X_TILL_KEY": till.key_id, "HTTP_X_TIMESTAMP": stamp,
            "HTTP_X_SIGNATURE": signature_compute(secret=d.till_secrets[till.pk], timestamp=stamp, method="POST",
                                                  path=path, body=body),
        }  # fmt: skip
        hosts = [h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")]
        client = Client(HTTP_HOST=hosts[0] if hosts else "testserver", REMOTE_ADDR="192.0.2.50")
        response = client.post(path, data=body, content_type="application/json", **headers)
        d.stats.ops[f"lookup:{response.status_code}"] += 1

    def pii_harvest(self) -> None:
        d = self.d
        store = d.stores[1 % len(d.stores)]
        manager = d.managers[store.pk]
        start = self.moment(0.5, 0.8, hour=16)
        targets = [m for m in d.members if m.pk not in self.taken][:30]
        for k, member in enumerate(targets):
            d.at(start + timedelta(minutes=1.5 * k), lambda m=member: d.reveal(manager, m))
        self.truth("pii_harvest", [f"staff:{manager.pk}"], start, start + timedelta(minutes=45))

    def linked_cashier(self) -> None:
        from members.services.membership import member_create

        d, (accomplice,) = self.d, self.own["linked_cashier"]
        s = 2 % len(d.stores)
        cashier = d.cashiers[d.stores[s].pk][0]
        rng = d.rng("linked")
        start = self.moment(0.3, 0.4, hour=9)
        own: list[Any] = []

        def link() -> None:  # the cashier's own member account, on the staff record
            member = member_create(home_store=d.stores[s], name="Drill Cashier Own", phone=f"+6013{2_000_000 + (d.seed * 1000 + 999) % 7_000_000}",
                                   email=f"drill{d.seed}.own@example.invalid", preferred_channel="email")  # fmt: skip
            type(cashier).objects.filter(pk=cashier.pk).update(member_account=member)
            d.login(member, f"shared-{d.seed}", "10.7.0.9")
            own.append(member)

        d.at(start - timedelta(days=2), link)
        for k in range(3):
            d.purchase(accomplice, s, start - timedelta(days=3 - k, hours=-1), 60_000, f"lk{k}", rng)
        d.at(start - timedelta(hours=1), lambda: d.login(accomplice, f"shared-{d.seed}", "10.7.0.9"))
        for k in range(3):
            when = start + timedelta(days=k)

            def buy_and_redeem(k=k) -> None:
                session = d.sessions.get(accomplice.pk)
                voucher = d.voucher_buy(accomplice, session, d.coffee, f"lk{k}") if session else None
                if voucher is not None:
                    d.redeem_voucher(cashier, s, voucher, f"lk{k}")

            d.at(when, buy_and_redeem)
        self.truth(
            "linked_cashier", [f"staff:{cashier.pk}", f"member:{accomplice.pk}"], start, start + timedelta(days=2)
        )

    def earn_spike(self) -> None:
        d, (victim,) = self.d, self.victims["earn_spike"]
        rng = d.rng("spike")
        start = self.moment(0.7, 0.85, hour=12)
        for k in range(4):
            d.purchase(victim, d.home[victim.pk], start + timedelta(minutes=30 * k), 300_000, f"spike{k}", rng)
        self.truth("earn_spike", [f"member:{victim.pk}"], start, start + timedelta(hours=2))

    def enrolment_farm(self) -> None:
        from members.services.membership import member_create

        d = self.d
        start = self.moment(0.5, 0.8, hour=20)
        truth = self.truth("enrolment_farm", ["client:*"], start, start + timedelta(hours=2))

        def enrol(k: int) -> None:
            member = member_create(home_store=d.stores[0], name=f"Drill Farm {k}", phone=f"+6016{2_000_000 + (d.seed * 1000 + k) % 7_000_000}",
                                   email=f"drill{d.seed}.farm{k}@example.invalid", preferred_channel="email")  # fmt: skip
            d.label(f"member:{member.pk}", f"farm#{k}")
            truth.subjects.add(f"member:{member.pk}")
            d.login(member, f"farm-{d.seed}", "203.0.113.99")

        for k in range(4):
            d.at(start + timedelta(minutes=25 * k), lambda k=k: enrol(k))

    def voucher_rescan(self) -> None:
        d, (member,) = self.d, self.own["voucher_rescan"]
        rng = d.rng("rescan")
        start = self.moment(0.4, 0.7, hour=10)
        d.purchase(member, 0, start - timedelta(days=2), 30_000, "rs", rng)
        d.at(start - timedelta(days=1), lambda: d.login(member, f"rs-{d.seed}", "10.0.3.3"))
        first, second = d.cashiers[d.stores[0].pk][0], d.cashiers[d.stores[1 % len(d.stores)].pk][0]
        truth = self.truth(
            "voucher_rescan", [f"member:{member.pk}", f"staff:{second.pk}"], start, start + timedelta(hours=2)
        )
        held: list[Any] = []

        def buy() -> None:
            voucher = d.voucher_buy(member, d.sessions.get(member.pk), d.coffee, "rs")
            if voucher is not None and d.redeem_voucher(first, 0, voucher, "rs1"):
                held.append(voucher)

        d.at(start, buy)
        d.at(start + timedelta(hours=1),
             lambda: held and d.redeem_voucher(second, 1 % len(d.stores), held[0], "rs2"))  # fmt: skip
        truth.subjects.add(f"till:{d.tills[1 % len(d.tills)].pk}")

    def cashier_frequency(self) -> None:
        from vouchers.models import Voucher
        from vouchers.services.issuing import voucher_goodwill_issue

        d = self.d
        s = 1 % len(d.stores)
        cashier = d.cashiers[d.stores[s].pk][-1]
        start = self.moment(0.5, 0.8, hour=15)
        vouchers: list[Any] = []

        def issue() -> None:
            for k, member in enumerate(self.victims["cashier_frequency"]):
                voucher_goodwill_issue(staff=d.hq, member=member, reward=d.coffee, reason="Drill goodwill",
                                       issue_key=d.key("goodwill", k))  # fmt: skip
                vouchers.append(Voucher.objects.filter(member=member).order_by("-issued_at", "-pk").first())

        d.at(start - timedelta(days=1), issue)
        for k in range(22):
            d.at(start + timedelta(minutes=2.5 * k),
                 lambda k=k: vouchers and d.redeem_voucher(cashier, s, vouchers[k], f"cf{k}"))  # fmt: skip
        self.truth("cashier_frequency", [f"staff:{cashier.pk}"], start, start + timedelta(minutes=55))


# --- scoring -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    detector: str
    subjects: frozenset[str]
    at: datetime
    alert: bool  # an alert (precision counts alerts), else a signal or refusal event


def evidence_collect(since: datetime) -> list[Evidence]:
    """Everything the detectors left since ``since``: alerts (with their signals' subjects
    and their own member/staff/store columns), signals without an alert, the ledger's
    refusal events of ``REFUSAL_DETECTORS``."""
    from fraud.models import FraudAlert, RiskSignal
    from loyalty.ledger.selectors import refusals_in_window

    found: list[Evidence] = []
    keys: dict[int, set[str]] = defaultdict(set)
    for alert_id, key in RiskSignal.objects.filter(alert__isnull=False, created_at__gte=since).values_list(
        "alert_id", "subject_key"
    ):
        keys[alert_id].add(key)
    alerts = FraudAlert.objects.filter(created_at__gte=since).exclude(kind="detector_storm").order_by("pk")
    for alert in alerts.values("pk", "kind", "member_id", "staff_id", "store_id", "created_at"):
        subjects = set(keys[alert["pk"]])
        for kind in ("member", "staff", "store"):
            if alert[f"{kind}_id"]:
                subjects.add(f"{kind}:{alert[f'{kind}_id']}")
        found.append(Evidence(alert["kind"], frozenset(subjects), alert["created_at"], True))
    lone = RiskSignal.objects.filter(alert__isnull=True, created_at__gte=since).values_list(
        "detector", "subject_key", "created_at"
    )
    found.extend(Evidence(det, frozenset({key}), at, False) for det, key, at in lone)
    by_code = {code: det for det, codes in REFUSAL_DETECTORS.items() for code in codes}
    refusals = refusals_in_window(start=since, end=timezone.now() + timedelta(days=3650), codes=sorted(by_code))
    refusals = refusals.values_list("code", "member_id", "actor_till_id", "created_at")
    for code, member_id, till_id, at in refusals:
        subjects = {f"member:{member_id}"} if member_id else set()
        if till_id:
            subjects.add(f"till:{till_id}")
        found.append(Evidence(by_code[code], frozenset(subjects), at, False))
    return found


def _touches(evidence: Evidence, truth: Truth) -> bool:
    if evidence.subjects & truth.subjects:
        return True
    return "client:*" in truth.subjects and any(s.startswith("client:") for s in evidence.subjects)


def drill_score(drill: Drill) -> dict[str, Any]:
    """Recall, precision and detection times per scenario; false positives per 1,000
    members of each segment. Deterministic: labels, not ids; seconds, not moments."""
    from fraud.models import FraudCase

    grace = timedelta(days=drill.profile.grace_days)
    evidence = evidence_collect(drill.start - timedelta(days=1))
    known = known_detectors(e.detector for e in evidence)

    def in_window(e: Evidence, truth: Truth) -> bool:
        return truth.start - timedelta(minutes=1) <= e.at <= truth.end + grace and _touches(e, truth)

    # The fraudsters' own members do nothing but fraud: an alert on one is never false,
    # whenever it comes (a scenario's set-up, before its window, is fraud too).
    own = {f"member:{pk}" for pk in getattr(drill, "scenario_members", ())}
    true_alert = [bool(e.subjects & own) or any(in_window(e, t) for t in drill.truths) for e in evidence]
    bad = set().union(*(t.subjects for t in drill.truths)) if drill.truths else set()

    def apart(e: Evidence) -> bool:
        """On family or business members only (victims outside their scenario's window
        included): their segment's false positives (FRAUD.md §5: families and
        businesses apart), not the scenario's precision."""
        members = [s for s in e.subjects if s.startswith("member:")]
        return (
            bool(members)
            and len(members) == len(e.subjects)
            and all(drill.segment.get(int(s.split(":", 1)[1])) in ("family", "business") for s in members)
        )

    # Per detector: (true, apart) for each of its alerts.
    alerts_by_detector: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for e, ok in zip(evidence, true_alert, strict=True):
        if e.alert:
            alerts_by_detector[e.detector].append((ok, not ok and apart(e)))
    # A scenario's case: one its expected detectors' alerts joined (a case another
    # detector opened on a shared subject, a store or a till, is not its detection).
    cases = list(
        FraudCase.objects.filter(opened_at__gte=drill.start, alerts__isnull=False)
        .values_list("subject_key", "opened_at", "alerts__kind")
        .distinct()
    )
    scenarios = []
    for truth in sorted(drill.truths, key=lambda t: t.scenario):
        detectors = {}
        for code in truth.expected:
            hits = sorted(e.at for e in evidence if e.detector == code and in_window(e, truth))
            status = "detected" if hits else ("missed" if code in known else "pending")
            detectors[code] = {
                "status": status,
                "detail": "detector missing" if status == "pending" else "",
                "first_signal_seconds": int((hits[0] - truth.start).total_seconds()) if hits else None,
            }
        present = [c for c in truth.expected if detectors[c]["status"] != "pending"]
        detected = [c for c in present if detectors[c]["status"] == "detected"]
        every = [ok for c in present for ok, _ in alerts_by_detector.get(c, [])]
        judged = [ok for c in present for ok, away in alerts_by_detector.get(c, []) if not away]
        first = [d["first_signal_seconds"] for d in detectors.values() if d["first_signal_seconds"] is not None]
        case_times = sorted(
            at
            for key, at, kind in cases
            if kind in truth.expected
            and (key in truth.subjects or ("client:*" in truth.subjects and key.startswith("client:")))
            and truth.start - timedelta(minutes=1) <= at <= truth.end + grace
        )
        scenarios.append({
            "scenario": truth.scenario,
            "subjects": sorted(drill.labels.get(k, k) for k in truth.subjects),
            "start_offset_hours": round((truth.start - drill.start).total_seconds() / 3600, 2),
            "duration_minutes": int((truth.end - truth.start).total_seconds() // 60),
            "expected": list(truth.expected),
            "detectors": detectors,
            "status": "pending" if not present else ("pass" if len(detected) == len(present) else "fail"),
            "recall": round(len(detected) / len(present), 4) if present else None,
            "precision": round(sum(judged) / len(judged), 4) if judged else None,
            "precision_all_segments": round(sum(every) / len(every), 4) if every else None,
            "first_signal_seconds": min(first) if first else None,
            "first_case_seconds": int((case_times[0] - truth.start).total_seconds()) if case_times else None,
        })  # fmt: skip
    # False positives: members with an alert or signal who are in no scenario, per segment.
    flagged: dict[str, set[str]] = defaultdict(set)
    for e, ok in zip(evidence, true_alert, strict=True):
        if ok:
            continue
        for subject in e.subjects:
            if subject.startswith("member:") and subject not in bad:
                pk = int(subject.split(":", 1)[1])
                if pk in drill.segment:
                    flagged[drill.segment[pk]].add(f"{e.detector}")
                    flagged[f"{drill.segment[pk]}:members"].add(subject)
    population = defaultdict(int)
    for pk, segment in drill.segment.items():
        if f"member:{pk}" not in bad:
            population[segment] += 1
    false_positives = {
        segment: {
            "members": population[segment],
            "flagged": len(flagged[f"{segment}:members"]),
            "per_1000": round(1000 * len(flagged[f"{segment}:members"]) / population[segment], 2)
            if population[segment] else None,
            "detectors": sorted(flagged[segment]),
        }
        for segment in SEGMENTS
    }  # fmt: skip
    detector_rows = {}
    for code, rows in sorted(alerts_by_detector.items()):
        true, away = sum(ok for ok, _ in rows), sum(a for _, a in rows)
        detector_rows[code] = {
            "alerts": len(rows), "true": true, "apart": away,
            "precision": round(true / (len(rows) - away), 4) if len(rows) > away else None,
        }  # fmt: skip
    return {"scenarios": scenarios, "false_positives": false_positives, "detectors": detector_rows}


def floors_check(result: dict[str, Any], *, recall: float = 1.0, precision: float = 0.95) -> list[str]:
    """The scenarios below the floors (pending ones are not judged): an empty list passes."""
    problems = []
    for row in result["scenarios"]:
        if row["status"] == "pending":
            continue
        if row["recall"] is not None and row["recall"] < recall:
            missed = [c for c, d in row["detectors"].items() if d["status"] == "missed"]
            problems.append(f"{row['scenario']}: recall {row['recall']:.0%} (missed {', '.join(missed)})")
        if row["precision"] is not None and row["precision"] < precision:
            problems.append(f"{row['scenario']}: precision {row['precision']:.0%}")
    return problems


# --- the run -------------------------------------------------------------------------------------------


def drill_run(*, seed: int, profile: str | Profile, end: datetime = DEFAULT_END, out=None) -> dict[str, Any]:
    """Build the population, inject the scenarios, play the timeline with the batch
    detectors at their cadence, score. Returns the result (``drill_json`` writes it)."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    drill = Drill(seed=seed, profile=prof, end=end, out=out)
    timings: dict[str, float] = {}
    started = time.monotonic()
    previous = logging.root.manager.disable
    # The services log each step (and the API each 4xx): the drill reports totals instead.
    logging.disable(logging.WARNING)
    # Work the services hand to Celery after commit (post-commit detectors, risk decisions)
    # runs in the drill's process, at its moment on the travelled clock, as a worker keeping
    # up would run it; a broker's queue would hold it past the drill.
    from loyalty.celery import app as celery_app

    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with connection.cursor() as cursor:  # a drill's rows need no durability: no fsync per commit
            cursor.execute("SET synchronous_commit = off")
        drill.setup()
        drill.members_create()
        timings["setup_seconds"] = time.monotonic() - started
        mark = time.monotonic()
        drill.history_bulk()
        timings["bulk_history_seconds"] = time.monotonic() - mark
        scenarios = Scenarios(drill)
        drill.scenario_members = scenarios.plan()
        drill.population()
        scenarios.inject()
        drill.detector_schedule()
        mark = time.monotonic()
        drill.play()
        timings["timeline_seconds"] = time.monotonic() - mark
        # The batch detectors once more over the whole period, timed with their peak memory.
        mark = time.monotonic()
        tracemalloc.start()
        import time_machine

        with time_machine.travel(drill.end + timedelta(hours=2), tick=False):
            before = dict(drill.stats.detector_seconds)
            drill.detectors_run(tuple(detector_registry()), drill.end)
            final = {c: drill.stats.detector_seconds[c] - before.get(c, 0.0) for c in detector_registry()}
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        timings["batch_detectors_seconds"] = time.monotonic() - mark
        result = drill_score(drill)
    finally:
        logging.disable(previous)
        celery_app.conf.task_always_eager = eager
    timings["total_seconds"] = time.monotonic() - started
    registry = detector_registry()
    result.update(
        {
            "seed": seed,
            "profile": prof.name,
            "period": {"start": drill.start.isoformat(), "end": drill.end.isoformat(), "days": prof.days,
                       "live_days": prof.live_days},
            "population": {
                "members": len(drill.segment),
                "segments": {s: sum(1 for v in drill.segment.values() if v == s) for s in SEGMENTS},
                "stores": len(drill.stores),
                "ops": dict(sorted(drill.stats.ops.items())),
                "refused": dict(sorted(drill.stats.refused.items())),
                "errors": dict(sorted(drill.stats.errors.items())),
            },
            "registry": {code: cadence for code, (_, cadence) in registry.items()},
            # Machine-dependent figures, apart from the golden comparison (``drill_json(..., timings=False)``).
            "timings": {
                **{k: round(v, 2) for k, v in timings.items()},
                "batch_detector_seconds": {c: round(v, 3) for c, v in sorted(final.items())},
                "batch_detectors_peak_python_mb": round(peak / 2**20, 1),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
        }
    )  # fmt: skip
    result["floors"] = floors_check(result)
    return result


def drill_json(result: dict[str, Any], *, timings: bool = True) -> str:
    """The result as sorted JSON; without ``timings`` it is the same for the same seed
    and code (the golden file's form)."""
    data = dict(result) if timings else {k: v for k, v in result.items() if k != "timings"}
    return json.dumps(data, sort_keys=True, indent=2) + "\n"


def drill_table(result: dict[str, Any]) -> list[str]:
    """The result for people: one row per scenario, then false positives and timings."""
    rows = [
        f"{'scenario':<18} {'status':<8} {'recall':>6} {'prec.':>6} {'(all)':>6} {'signal':>9} {'case':>9}  detectors"
    ]

    def pct(x):
        return "-" if x is None else f"{x:.0%}"

    def dur(s):
        if s is None:
            return "-"
        return f"{s / 3600:.1f}h" if abs(s) >= 3600 else f"{s // 60}m"

    for row in result["scenarios"]:
        dets = ", ".join(f"{c}={d['status']}" for c, d in row["detectors"].items())
        rows.append(
            f"{row['scenario']:<18} {row['status']:<8} {pct(row['recall']):>6} {pct(row['precision']):>6} "
            f"{pct(row['precision_all_segments']):>6} "
            f"{dur(row['first_signal_seconds']):>9} {dur(row['first_case_seconds']):>9}  {dets}"
        )
    rows.append("")
    rows.append("False positives per 1,000 members (members with an alert or signal outside any scenario):")
    for segment, fp in result["false_positives"].items():
        rows.append(
            f"  {segment:<9} {fp['per_1000'] if fp['per_1000'] is not None else '-':>8}  "
            f"({fp['flagged']} of {fp['members']}) {', '.join(fp['detectors'])}"
        )
    if result["detectors"]:
        rows.append("Alerts per detector (true = on a scenario's subjects in its window; apart = on innocent "
                    "families or businesses, counted in their false positives, not in precision):")  # fmt: skip
        for code, d in result["detectors"].items():
            rows.append(
                f"  {code:<30} {d['true']}/{d['alerts']}  apart {d['apart']:<3} precision {pct(d['precision'])}"
            )
    t = result.get("timings", {})
    if t:
        rows.append(
            f"Time: total {t['total_seconds']}s (setup {t['setup_seconds']}s, bulk history {t['bulk_history_seconds']}s, "
            f"timeline {t['timeline_seconds']}s); batch detectors over the period {t['batch_detectors_seconds']}s, "
            f"peak Python memory {t['batch_detectors_peak_python_mb']} MB, max RSS {t['max_rss_mb']} MB"
        )
        for code, seconds in t["batch_detector_seconds"].items():
            rows.append(f"  {code:<30} {seconds}s")
    ops = result["population"]["ops"]
    rows.append(f"Operations: {sum(ops.values()):,} ({', '.join(f'{k} {v}' for k, v in ops.items())})")
    if result["population"]["refused"]:
        rows.append(f"Refused: {', '.join(f'{k} {v}' for k, v in result['population']['refused'].items())}")
    if result["population"]["errors"]:
        rows.append(f"Errors: {result['population']['errors']}")
    rows.append("Floors (recall 100 %, precision >= 95 %, pending scenarios not judged): "
                + ("met" if not result["floors"] else "; ".join(result["floors"])))  # fmt: skip
    return rows

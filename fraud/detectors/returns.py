"""Return detectors (FRAUD.md rows 11-19): suspicious returns become member signals
("+1"s), and the return ladder turns a member's +1s into a warning, then a review.

Where they run (``fraud.tasks``, schedules seeded by fraud migration 0004):

- **Micro-batch** (``returns_detect``, every 5 minutes, for the rows marked PC): the
  returns and refused returns created since the last run's watermark, up to ``now``
  less a 5-minute lag (ids are not in commit order), read once and handed to rows
  13-18, then the ladder. Nothing on the ledger's return path: the till data and the
  refusal records the ledger already writes are all these detectors read.
- **Nightly** (``returns_nightly``): rows 11 (return rate) and 12 (buy-return-rebuy
  cycles), then the ladder.

Every detector takes ``as_of`` (and a window start), reads set-based through
``loyalty.ledger.selectors`` and raises through ``fraud.services`` with deterministic
dedupe keys, so a re-run writes nothing new. Facts are ids, counts, codes and times.

A **+1** is one suspicious return: each signal names it in ``facts["plus_one"]``
(``return:<operation>``, ``refusal:<id>``), so a return seen by two detectors counts
once. ``return_other_store`` (row 14) adds weight only: it is a +1 only together with
another detector's signal on the same return, which then counts it anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from fraud import config as fraud_config
from fraud.detectors.runs import LAG, micro_batch
from fraud.models import ReturnLadderStep, RiskSignal
from fraud.scoring import Subject, signal_raise
from fraud.services import alert_raise
from loyalty import notifications
from loyalty.kernel.timestamps import iso_utc
from loyalty.ledger import selectors as ledger
from members.models import Member
from members.selectors import member_tier_upgrades

log = logging.getLogger(__name__)

# Rows read by the micro-batch end ``LAG`` before ``now`` (``fraud.detectors.runs``): a
# transaction still open when the batch runs commits rows with an earlier ``created_at``.
WATERMARK = "returns"
# A detector called on its own (the registry) reads this far back from ``as_of``.
DEFAULT_LOOKBACK = timedelta(days=1)
# After an outage the micro-batch catches up at most this far back.
MAX_WINDOW = timedelta(days=7)

RATE, CYCLE, UNMATCHED, OTHER_STORE = "return_rate", "return_cycle", "return_unmatched", "return_other_store"
TENDER, NO_RECEIPT, AFTER_TIER, SHORTFALL = (
    "return_tender_mismatch", "return_no_receipt_high", "return_after_tier", "return_shortfall",
)  # fmt: skip
LADDER = "return_ladder"
# The detectors whose signals are +1s on the ladder (row 14 only with another: see above).
PLUS_ONE_DETECTORS = (RATE, CYCLE, UNMATCHED, TENDER, NO_RECEIPT, AFTER_TIER, SHORTFALL)
WARNING_TOPIC = "fraud_return_warning"
# What the case of a ladder review recommends once an analyst confirms fraud: suspending
# the member is a human action (FRAUD.md §3, "Suspend": analyst recommends, Program
# Administrator confirms); the case page builds the button from this.
LADDER_ACTION_ON_CONFIRMED = "member_suspend"


def _threshold(code: str, key: str) -> int:
    return fraud_config.threshold(code, key)


def _member_signal(
    detector: str, member_id: int | None, *, ident: str, plus_one: str, occurred_at: datetime, **facts: Any
) -> bool:
    """One signal of ``detector`` about a member, once per ``ident`` (the incident: a
    return, a refusal, a window); True if this call wrote it."""
    if member_id is None:
        return False
    result = signal_raise(
        detector=detector,
        subject=Subject.member(member_id),
        facts={**facts, "plus_one": plus_one},
        occurred_at=occurred_at,
        dedupe_key=f"{detector}:member:{member_id}:{ident}",
    )
    return result.created


# --- What one micro-batch reads -------------------------------------------------------------


@dataclass
class Batch:
    """The rows of one micro-batch window [start, end): returns with their till data
    and outcome, and refused returns (unmatched, tender mismatch)."""

    start: datetime
    end: datetime
    returns: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, start: datetime, end: datetime) -> Batch:
        returns = list(ledger.returns_with_outcomes(start=start, end=end))
        refusals = list(
            ledger.refusals_in_window(
                start=start, end=end, codes=["purchase_not_found", "refund_tender_mismatch"], kind="reverse_earn"
            )
            .order_by("created_at", "id")
            .values("id", "code", "member_id", "actor_till_id", "store_id", "created_at")
        )
        return cls(start, end, returns, [dict(row) for row in refusals])


def _batch(as_of: datetime, since: datetime | None, batch: Batch | None) -> Batch:
    return batch if batch is not None else Batch.read(since or as_of - DEFAULT_LOOKBACK, as_of)


def _returned_minor(row: dict[str, Any]) -> int | None:
    """The value a return gave back: its amount, or its share of the purchase's."""
    if row["amount_minor"] is not None:
        return int(row["amount_minor"])
    if row["purchase_amount_minor"] and row["purchase_points"]:
        return int(row["purchase_amount_minor"]) * int(row["points"]) // int(row["purchase_points"])
    return None


# --- Row 11: return rate (nightly) ---------------------------------------------------------


def return_rate(as_of: datetime) -> int:
    """Members whose returned value over the last ``window_days`` exceeds
    ``rate_percent`` of their purchased value, with at least ``min_purchases``
    purchases: one +1 per return made while over the rate (keyed by the window's last
    return, so a nightly re-run adds nothing until another return). Returns the
    number of signals written."""
    days, rate = _threshold(RATE, "window_days"), _threshold(RATE, "rate_percent")
    start = as_of - timedelta(days=days)
    written = 0
    rows = ledger.return_rates_by_member(start=start, end=as_of, min_purchases=_threshold(RATE, "min_purchases"))
    for row in rows:
        purchased, returned = int(row["purchased_minor"]), int(row["returned_minor"])
        if purchased <= 0 or returned * 100 <= purchased * rate:
            continue
        written += _member_signal(
            RATE, row["member_id"], ident=f"return:{row['last_return_id']}", plus_one=f"return:{row['last_return_id']}",
            occurred_at=as_of, purchases=row["purchases"], returns=row["returns"], purchased_minor=purchased,
            returned_minor=returned, rate_percent=returned * 100 // purchased, threshold_percent=rate,
            window_days=days, op=str(row["last_return_id"]),
        )  # fmt: skip
    return written


# --- Row 12: buy-return-rebuy cycles (nightly) ----------------------------------------------


def return_cycle(as_of: datetime) -> int:
    """Members with at least ``min_cycles`` cycles in ``window_days``: an item
    (``sku_hash``) returned and bought again at another store within ``rebuy_days``.
    One +1 per latest cycle return. Returns the number of signals written."""
    days = _threshold(CYCLE, "window_days")
    rows = ledger.return_cycles_by_member(
        start=as_of - timedelta(days=days),
        end=as_of,
        rebuy_days=_threshold(CYCLE, "rebuy_days"),
        min_cycles=_threshold(CYCLE, "min_cycles"),
    )
    written = 0
    for row in rows:
        written += _member_signal(
            CYCLE, row["member_id"], ident=f"return:{row['last_return_id']}",
            plus_one=f"return:{row['last_return_id']}", occurred_at=as_of, cycles=row["cycles"],
            sku_hashes=list(row["sku_hashes"]), stores=row["store_ids"], window_days=days,
            op=row["last_return_id"],
        )  # fmt: skip
    return written


# --- Rows 13-18: each return or refused return (micro-batch) --------------------------------


def return_unmatched(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """Returns refused for want of a recorded purchase (``purchase_not_found``): a +1
    for the member; a till with ``till_alert_per_day`` or more such refusals in a local
    day gets one alert that day (the till and its store as subjects)."""
    batch = _batch(as_of, since, batch)
    written = 0
    days: set[Any] = set()
    for row in batch.refusals:
        if row["code"] != "purchase_not_found":
            continue
        written += _member_signal(
            UNMATCHED, row["member_id"], ident=f"refusal:{row['id']}", plus_one=f"refusal:{row['id']}",
            occurred_at=row["created_at"], refusal=row["id"], till=row["actor_till_id"], store=row["store_id"],
        )  # fmt: skip
        if row["actor_till_id"] is not None:
            days.add(timezone.localdate(row["created_at"]))
    if not days:
        return written
    per_day = _threshold(UNMATCHED, "till_alert_per_day")
    first = min(days)
    start = timezone.make_aware(datetime(first.year, first.month, first.day))
    counts = ledger.refusal_counts_by_till_day(start=start, end=batch.end, codes=["purchase_not_found"])
    for row in counts:
        if row["day"] not in days or row["refusals"] < per_day:
            continue
        subjects = [Subject.till(row["actor_till_id"])] + ([Subject.store(row["store_id"])] if row["store_id"] else [])
        raised = alert_raise(
            detector=UNMATCHED,
            subjects=subjects,
            facts={"till": row["actor_till_id"], "store": row["store_id"], "day": row["day"].isoformat(),
                   "refusals": row["refusals"], "threshold": per_day},
            occurred_at=batch.end,
            dedupe_key=f"{UNMATCHED}:till:{row['actor_till_id']}:{row['day'].isoformat()}",
            store_id=row["store_id"],
            now=batch.end,
        )  # fmt: skip
        written += len(raised.signals) if raised.created else 0
    return written


def return_other_store(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """A return at another store than its purchase's: weight only (never a +1 alone)."""
    written = 0
    for row in _batch(as_of, since, batch).returns:
        store, bought_at = row["store_id"], row["purchase_store_id"]
        if store is None or bought_at is None or store == bought_at:
            continue
        written += _member_signal(
            OTHER_STORE, row["member_id"], ident=f"return:{row['id']}", plus_one=f"return:{row['id']}",
            occurred_at=row["created_at"], op=str(row["id"]), stores=[bought_at, store],
        )  # fmt: skip
    return written


def return_tender_mismatch(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """A refund to another tender than the purchase's: refused in the ledger
    (``refund_tender_mismatch`` refusal records) or, under ``allow_and_flag``, booked
    and flagged (``tender_mismatch`` on the return). Each is a +1."""
    batch = _batch(as_of, since, batch)
    written = 0
    for row in batch.refusals:
        if row["code"] == "refund_tender_mismatch":
            written += _member_signal(
                TENDER, row["member_id"], ident=f"refusal:{row['id']}", plus_one=f"refusal:{row['id']}",
                occurred_at=row["created_at"], refusal=row["id"], till=row["actor_till_id"], refused=True,
            )  # fmt: skip
    for row in batch.returns:
        if row["tender_mismatch"]:
            written += _member_signal(
                TENDER, row["member_id"], ident=f"return:{row['id']}", plus_one=f"return:{row['id']}",
                occurred_at=row["created_at"], op=str(row["id"]), purchase=str(row["purchase_id"]), refused=False,
            )  # fmt: skip
    return written


def return_no_receipt_high(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """A return without its receipt (``receipt_presented`` false) worth ``amount_minor``
    or more: a +1, its facts noting that it needed a manager's override."""
    floor = _threshold(NO_RECEIPT, "amount_minor")
    written = 0
    for row in _batch(as_of, since, batch).returns:
        amount = _returned_minor(row)
        if row["receipt_presented"] is not False or amount is None or amount < floor:
            continue
        written += _member_signal(
            NO_RECEIPT, row["member_id"], ident=f"return:{row['id']}", plus_one=f"return:{row['id']}",
            occurred_at=row["created_at"], op=str(row["id"]), amount_minor=amount, threshold_minor=floor,
            action="manager_override",
        )  # fmt: skip
    return written


def return_after_tier(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """A return at most ``days`` after a tier upgrade its purchase counted for (the
    purchase made before the upgrade, inside the tier window): a +1. Upgrades are read
    from the members' audit log (one query for the batch's members)."""
    batch = _batch(as_of, since, batch)
    rows = [row for row in batch.returns if row["purchase_created_at"] is not None]
    if not rows:
        return 0
    days = _threshold(AFTER_TIER, "days")
    window = timedelta(days=settings.LOYALTY_TIER_WINDOW_DAYS)
    upgrades: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for upgrade in member_tier_upgrades(
        member_ids={row["member_id"] for row in rows},
        start=min(row["purchase_created_at"] for row in rows),
        end=batch.end,
    ):
        upgrades[upgrade["member_id"]].append(upgrade)
    written = 0
    for row in rows:
        bought, returned = row["purchase_created_at"], row["created_at"]
        counted = [
            u for u in upgrades.get(row["member_id"], [])
            if bought <= u["at"] <= returned and returned - u["at"] <= timedelta(days=days) and u["at"] - bought <= window
        ]  # fmt: skip
        if not counted:
            continue
        upgrade = counted[-1]
        written += _member_signal(
            AFTER_TIER, row["member_id"], ident=f"return:{row['id']}", plus_one=f"return:{row['id']}",
            occurred_at=returned, op=str(row["id"]), purchase=str(row["purchase_id"]),
            old_tier=upgrade["old_tier"], new_tier=upgrade["new_tier"], upgraded_at=iso_utc(upgrade["at"]),
            days_after=(returned - upgrade["at"]).days,
        )  # fmt: skip
    return written


def return_shortfall(as_of: datetime, *, since: datetime | None = None, batch: Batch | None = None) -> int:
    """A return whose points were already spent (the ledger booked the shortfall to
    RETURN_SHORTFALL and flagged the return for review): a +1."""
    written = 0
    for row in _batch(as_of, since, batch).returns:
        if row["shortfall_points"] > 0:
            written += _member_signal(
                SHORTFALL, row["member_id"], ident=f"return:{row['id']}", plus_one=f"return:{row['id']}",
                occurred_at=row["created_at"], op=str(row["id"]), points=row["points"],
                shortfall=int(row["shortfall_points"]),
            )  # fmt: skip
    return written


MICRO_BATCH: tuple[Callable[..., int], ...] = (
    return_unmatched, return_other_store, return_tender_mismatch, return_no_receipt_high, return_after_tier,
    return_shortfall,
)  # fmt: skip


# --- Row 19: the return ladder -------------------------------------------------------------


@dataclass(frozen=True)
class LadderRun:
    warnings: int = 0
    reviews: int = 0


def ladder_counts(*, as_of: datetime, member_ids: Iterable[int] | None = None, at_least: int = 1) -> dict[int, int]:
    """Suspicious returns (+1s) per member over the ladder's window ending at
    ``as_of``: distinct ``plus_one`` among the members' return signals. One query."""
    days = _threshold(LADDER, "window_days")
    signals = RiskSignal.objects.filter(
        detector__in=PLUS_ONE_DETECTORS,
        member__isnull=False,
        occurred_at__gt=as_of - timedelta(days=days),
        occurred_at__lte=as_of,
    )
    if member_ids is not None:
        signals = signals.filter(member_id__in=list(member_ids))
    rows = (
        signals.values("member_id")
        .annotate(plus_ones=Count(KT("facts__plus_one"), distinct=True))
        .filter(plus_ones__gte=at_least)
        .values_list("member_id", "plus_ones")
    )
    return dict(rows)


def return_ladder(as_of: datetime) -> LadderRun:
    """Members at ``warning_at`` +1s in the window get one warning message (the outbox:
    no reasons, no PII in it beyond the member's own address at delivery); at
    ``review_at``, an account review: a high-severity ``return_ladder`` alert, whose
    signal opens (or joins) the member's case in the returns inbox. Each step once per
    window (``ReturnLadderStep``). Suspension after confirmed fraud is the analyst's and
    Program Administrator's (``LADDER_ACTION_ON_CONFIRMED``), never automatic."""
    warning_at, review_at = _threshold(LADDER, "warning_at"), _threshold(LADDER, "review_at")
    days = _threshold(LADDER, "window_days")
    counts = ladder_counts(as_of=as_of, at_least=min(warning_at, review_at))
    warnings = reviews = 0
    for member_id, plus_ones in sorted(counts.items()):
        if plus_ones >= warning_at:
            warnings += _ladder_step(member_id, ReturnLadderStep.Step.WARNING, plus_ones, as_of, days)
        if plus_ones >= review_at:
            reviews += _ladder_step(member_id, ReturnLadderStep.Step.REVIEW, plus_ones, as_of, days)
    return LadderRun(warnings, reviews)


def _ladder_step(member_id: int, step: str, plus_ones: int, as_of: datetime, days: int) -> bool:
    since = as_of - timedelta(days=days)
    if ReturnLadderStep.objects.filter(member_id=member_id, step=step, at__gt=since).exists():
        return False
    # The key names the window by its oldest +1 signal: two runs taking the same step
    # at once name it alike (one wins); a later window, with other signals, names another.
    first = (
        RiskSignal.objects.filter(
            Q(member_id=member_id), detector__in=PLUS_ONE_DETECTORS, occurred_at__gt=since, occurred_at__lte=as_of
        )
        .order_by("occurred_at", "id")
        .values_list("id", flat=True)
        .first()
    )
    key = f"{LADDER}:{step}:member:{member_id}:{first}"
    try:
        with transaction.atomic():
            message = alert = None
            if step == ReturnLadderStep.Step.WARNING:
                message = notifications.notify_member(
                    member=Member.objects.get(pk=member_id),
                    channel="preferred",
                    subject="About your recent returns",
                    body=(
                        "We noticed several unusual returns on your loyalty account recently. "
                        "Returns that do not follow the programme's rules can lead to a review of your account. "
                        "If you have questions, please ask at any store."
                    ),
                    topic=WARNING_TOPIC,
                )
            else:
                raised = alert_raise(
                    detector=LADDER,
                    subjects=[Subject.member(member_id)],
                    facts={"suspicious_returns": plus_ones, "review_at": _threshold(LADDER, "review_at"),
                           "window_days": days, "on_confirmed_fraud": LADDER_ACTION_ON_CONFIRMED},
                    occurred_at=as_of,
                    dedupe_key=key,
                    severity="high",
                    member_id=member_id,
                    now=as_of,
                )  # fmt: skip
                alert = raised.alert
            ReturnLadderStep.objects.create(
                member_id=member_id, step=step, suspicious_returns=plus_ones, at=as_of, dedupe_key=key,
                message=message, alert=alert,
            )  # fmt: skip
    except IntegrityError:
        return False  # another run took this step first
    log.info("return ladder: %s for member %s (%s suspicious returns)", step, member_id, plus_ones)
    return True


def return_ladder_actions(*, case: Any) -> list[str]:
    """The human actions a case recommends from the ladder: ``member_suspend`` once the
    case is closed as confirmed fraud and one of its alerts is a ladder review (the case
    page offers it; the Program Administrator confirms)."""
    if case.outcome != "confirmed_fraud" or not case.alerts.filter(kind=LADDER).exists():
        return []
    return [LADDER_ACTION_ON_CONFIRMED]


# --- Runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnsRun:
    start: datetime | None
    end: datetime
    signals: dict[str, int]
    ladder: LadderRun


def returns_detect(*, now: datetime | None = None) -> ReturnsRun:
    """The micro-batch: rows 13-18 over what was created since the watermark (the
    ``DetectorRun`` named ``returns``), up to ``now`` less ``LAG``, then the ladder; the
    watermark moves to the window's end. Runs serialise (``fraud.detectors.runs``).
    Idempotent (a window read twice writes nothing new)."""
    now = now or timezone.now()
    ran: dict[str, Any] = {}

    def body(start: datetime, end: datetime) -> dict[str, Any]:
        batch = Batch.read(start, end)
        signals = {fn.__name__: fn(end, batch=batch) for fn in MICRO_BATCH}
        ladder = return_ladder(end)
        ran.update(start=start, signals=signals, ladder=ladder)
        return {"signals": signals, "warnings": ladder.warnings, "reviews": ladder.reviews}

    micro_batch(WATERMARK, now, body, first_window=DEFAULT_LOOKBACK, max_window=MAX_WINDOW)
    if not ran:
        return ReturnsRun(None, now - LAG, {}, LadderRun())
    return ReturnsRun(ran["start"], now - LAG, ran["signals"], ran["ladder"])


def returns_nightly(*, as_of: datetime | None = None) -> ReturnsRun:
    """Rows 11 and 12 up to ``as_of`` (default: now), then the ladder."""
    as_of = as_of or timezone.now()
    signals = {RATE: return_rate(as_of), CYCLE: return_cycle(as_of)}
    return ReturnsRun(None, as_of, signals, return_ladder(as_of))


DETECTORS: dict[str, Callable[[datetime], Any]] = {
    RATE: return_rate,
    CYCLE: return_cycle,
    UNMATCHED: return_unmatched,
    OTHER_STORE: return_other_store,
    TENDER: return_tender_mismatch,
    NO_RECEIPT: return_no_receipt_high,
    AFTER_TIER: return_after_tier,
    SHORTFALL: return_shortfall,
    LADDER: return_ladder,
}

"""Domain refusals of the ledger: each a stable code, a message and safe facts.

A refusal is an answer, not a crash: it is saved under the idempotency key like a
success (``loyalty.ledger.idempotency``), so a retry with the same key gets the same
refusal. The ledger knows no HTTP: the API edge gives each code its status
(``loyalty.api.errors.REFUSAL_STATUS``).
"""

from __future__ import annotations

from typing import Any

from loyalty.kernel.refusals import Refusal


class LedgerRefusal(Refusal):
    """The ledger's family of refusals: ``LedgerRefusal(message=None, **facts)``."""

    code = "refused"
    message = "The operation was refused."

    def __init__(self, message: str | None = None, **facts: Any) -> None:
        super().__init__(None, message, **facts)


class InsufficientPoints(LedgerRefusal):
    code = "insufficient_points"
    message = "The member does not have enough available points."


class MemberNotActive(LedgerRefusal):
    code = "member_not_active"
    message = "The member's account is not active."


class AccountRestricted(LedgerRefusal):
    """Spending is frozen by the fraud team (``members.services.restrictions``); earning
    continues. The facts say what to do and name the case, never why."""

    code = "account_restricted"
    message = "The member's account is restricted: points cannot be spent for now."


class ReceiptAlreadyUsed(LedgerRefusal):
    code = "receipt_already_used"
    message = "Points were already earned for this receipt."


class PurchaseNotFound(LedgerRefusal):
    code = "purchase_not_found"
    message = "No earning purchase matches this receipt."


class RefundTenderMismatch(LedgerRefusal):
    """A return paid back on another tender than the purchase's (FRAUD.md row 15), refused
    under ``LOYALTY_RETURN_TENDER_MISMATCH = "refuse"``: facts ``refund_advice`` "refuse"."""

    code = "refund_tender_mismatch"
    message = "The refund's payment tender differs from the purchase's: refund to the original tender."


class ReturnExceedsPurchase(LedgerRefusal):
    code = "return_exceeds_purchase"
    message = "More points would be returned than the purchase earned."


class HoldNotFound(LedgerRefusal):
    code = "hold_not_found"
    message = "No such redemption hold."


class HoldNotOpen(LedgerRefusal):
    code = "hold_not_open"
    message = "The redemption hold was already captured, voided or has lapsed."


class CaptureExceedsHold(LedgerRefusal):
    code = "capture_exceeds_hold"
    message = "A capture cannot take more points than were held."


class RedemptionNotFound(LedgerRefusal):
    code = "redemption_not_found"
    message = "No such redemption."


class RefundExceedsRedemption(LedgerRefusal):
    code = "refund_exceeds_redemption"
    message = "More points would be refunded than the redemption took."


class IdempotencyKeyReused(LedgerRefusal):
    """Not saved under the key (the key belongs to the first request)."""

    code = "idempotency_key_reused"
    message = "This idempotency key was used for a different request."


class VelocityLimit(LedgerRefusal):
    """A per-member velocity limit (spec "Transaction Velocity Limits")."""

    code = "velocity_limit"


class DailyEarnTransactionsExceeded(VelocityLimit):
    code = "daily_earn_transactions_exceeded"
    message = "The member has reached the number of earning transactions allowed today."


class DailyEarnPointsExceeded(VelocityLimit):
    code = "daily_earn_points_exceeded"
    message = "This purchase would take the member past the points they may earn today."


class DailyRedemptionsExceeded(VelocityLimit):
    code = "daily_redemptions_exceeded"
    message = "The member has reached the number of redemptions allowed today."


class DailyRedemptionShareExceeded(VelocityLimit):
    code = "daily_redemption_share_exceeded"
    message = "Redemptions today may not exceed the allowed share of the member's balance."


class LargeRedemptionCoolingPeriod(VelocityLimit):
    code = "large_redemption_cooling_period"
    message = "A large redemption needs a cooling period after the previous large redemption."

"""The points ledger: the only code that moves a member's points.

A double-entry journal (operations, their transfers between accounts), the points lots
that carry each credit's expiry and are spent earliest expiry first, and the members'
balance counters, all changed under one lock per member (LEDGER.md).

- ``services``: the ledger's operations by family (earn and return, holds, redeem and
  refund, expiry, adjustments) on a ``core`` of accounts, locks and journal writes. They
  return domain results (``core.Entry``) or raise a refusal (``loyalty.ledger.refusals``).
- ``idempotency``: runs an operation once per idempotency key in one transaction,
  saves its answer (or refusal) under the key and replays it for a retry.
- ``operations``: the operations as callers ask for them (the till, staff, jobs):
  keyed, retried, answering the saved ``Outcome``.
- ``api``: the till (POS) API over them.
"""

"""The ledger's services, one module per family of operations, on ``core``.

Each operation takes a ``core.Posting`` (who acts and the operation's id, given by
``loyalty.ledger.idempotency``), checks its rules under the member's lock, writes the
journal, and returns a ``core.Entry`` or raises a ``loyalty.ledger.refusals.LedgerRefusal``.
"""

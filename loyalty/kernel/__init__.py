"""The shared kernel: what every app of the product uses and nothing of theirs.

Encryption, card-number and free-text detection, raw SQL, store scoping, the
append-only machinery and database roles, the outbox, and the one domain refusal.
Nothing here imports a domain app (members, the ledger, vouchers, fraud, compliance).
"""

"""The till (POS) API over the ledger: base views, points endpoints, redemptions."""

"""Models of the vouchers app (built by later issues)."""

"""Manual point adjustments with maker-checker approval: the requests, their rules
and events, the daily report, and their admin pages. Points move only through the
ledger."""

"""Admin for the outbox (notifications sent) and the daily adjustment reports."""

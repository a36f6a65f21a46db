"""Models of the fraud app (built by later issues)."""

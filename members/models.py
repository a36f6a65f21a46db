"""Models of the members app (built by later issues)."""

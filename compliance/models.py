"""Models of the compliance app (built by later issues)."""

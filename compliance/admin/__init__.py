"""The compliance app's admin pages, one module per part: importing them registers them."""

from compliance.admin import access, chain, consumer, dashboard, requests, retention  # noqa: F401

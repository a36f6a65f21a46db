"""The vouchers admin pages: rewards and vouchers (``rewards``), the till's records and
the audit queue (``till``), the offline queue and points redemptions (``offline``).
Django's autodiscovery imports this package; ``rewards`` registers the till's pages first,
as before the package.
"""

from vouchers.admin import rewards  # noqa: F401

"""The admin pages of the app ``loyalty``: Django's autodiscovery imports this module."""

from loyalty.adjustments import admin as adjustments_admin  # noqa: F401
from loyalty.adjustments import admin_reports  # noqa: F401
from loyalty.ledger import admin as ledger_admin  # noqa: F401

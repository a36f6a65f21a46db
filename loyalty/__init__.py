"""The loyalty project package: settings, URLs, the Celery app and the points ledger."""

from loyalty.celery import app as celery_app

__all__ = ["celery_app"]

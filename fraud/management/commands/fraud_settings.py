"""``manage.py fraud_settings``: print the fraud configuration's environment variables and
their values as the README's tables (``fraud.config.settings_markdown``)."""

from django.core.management.base import BaseCommand

from fraud.config import README_TABLE_END, README_TABLE_START, settings_markdown


class Command(BaseCommand):
    help = "Print every FRAUD_* setting with its value, as the README's markdown tables."

    def handle(self, *args, **options):
        self.stdout.write(f"{README_TABLE_START}\n{settings_markdown()}\n{README_TABLE_END}")

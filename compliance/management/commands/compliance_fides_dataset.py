from django.core.management.base import BaseCommand

from compliance.fides import dataset_yaml


class Command(BaseCommand):
    help = "Print the data classification register as a fides dataset (YAML)."

    def handle(self, *args, **options):
        self.stdout.write(dataset_yaml())

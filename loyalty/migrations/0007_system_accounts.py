"""The chart of accounts exists from the start: one system account per kind.

The earn's single write statement finds its source account by kind, so the accounts
must exist before the first credit (``loyalty.apps`` recreates them after a flush).
"""

from django.db import migrations

SYSTEM_KINDS = ["earn", "redeem", "expire", "adjust", "return_shortfall"]


def open_system_accounts(apps, schema_editor):
    Account = apps.get_model("loyalty", "Account")
    Account.objects.using(schema_editor.connection.alias).bulk_create(
        [Account(kind=kind) for kind in SYSTEM_KINDS], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0006_earn_amount")]

    operations = [migrations.RunPython(open_system_accounts, migrations.RunPython.noop)]

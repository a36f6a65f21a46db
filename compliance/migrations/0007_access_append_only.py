"""AccessEvent is append-only in PostgreSQL; the retention purge alone may delete (access, 2 y)."""

from django.db import migrations

from loyalty.kernel.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("compliance", "0006_access")]

    operations = [append_only_triggers("compliance_accessevent", purgeable=True)]

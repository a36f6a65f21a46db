"""The keyset purge function (SECURITY DEFINER, owned by loyalty_retention via db_roles)."""

from django.db import migrations

from compliance.retention import PURGE_BATCH_SIGNATURE, purge_batch_function_sql


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(purge_batch_function_sql(), params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {PURGE_BATCH_SIGNATURE};")


class Migration(migrations.Migration):
    dependencies = [("compliance", "0003_retention"), ("loyalty", "0010_tamper_proof")]

    operations = [migrations.RunPython(create, drop)]

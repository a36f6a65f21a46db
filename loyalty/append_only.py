"""Append-only rows in Python (PostgreSQL triggers enforce the same in the database).

For journals and logs: a row is written once and never updated or deleted, neither
one at a time nor through a queryset. Retention purges go around the ORM on purpose
(see the triggers' ``loyalty.allow_purge`` setting).
"""

from django.db import migrations, models


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} rows are append-only")


def append_only_triggers(*tables: str) -> migrations.RunPython:
    """A migration operation: PostgreSQL refuses UPDATE and DELETE on ``tables`` (trigger
    ``<table>_append_only`` calling ``loyalty_refuse_change()``, created by staffauth's
    migration 0003, on which the migration must depend). Nothing on SQLite, where the
    Python guards above are the rule."""

    def create(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change();",
                    params=None,
                )

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for table in tables:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};", params=None)

    return migrations.RunPython(create, drop)

"""Records of what happened: append-only in Python, and in PostgreSQL itself.

Two layers guard every record of what happened (journals, logs, decisions):

- **Python** (this module's ``AppendOnlyModel``): a row is written once and never
  updated or deleted, neither one at a time nor through a queryset. SQLite runs (the
  first-run default) rely on it alone.
- **PostgreSQL triggers** (the SQL below, installed by migrations), which hold for every
  role that does not own the tables, whatever its grants:

  - ``loyalty_refuse_change()`` refuses UPDATE, DELETE and TRUNCATE of an append-only
    table. A table created with the trigger argument ``purgeable`` lets DELETE through
    for the retention role alone (``current_user = 'loyalty_retention'``), which is
    only ever the current user inside the ``SECURITY DEFINER`` purge function that role
    owns (``loyalty_purge``, below). No session setting switches it off: any role may
    set a custom setting, so a setting proves nothing.
  - ``loyalty_guard_update(<column specs>)``, on a table whose rows record a decision
    still being taken (a lot being spent, a request awaiting approval), lets an UPDATE
    change only the columns it names, each by its rule; DELETE and TRUNCATE are refused
    as above. A spec is ``column`` (may change freely), ``column!`` (set once: may
    change only from its empty value, NULL, '', {} or 0) or ``column=a>b|a>c`` (only
    these transitions).
  - TRUNCATE skips row triggers, so a statement trigger refuses it too, except for the
    tables' owner (who could drop the trigger anyway; the test runner's flush is one).

The application's database role (``loyalty.kernel.dbroles``) does not own the tables and gets
no UPDATE or DELETE on an append-only table, and UPDATE of only the named columns of a
guarded one: the triggers are the second wall, for a role granted too much.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from django.db import migrations, models

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import StateApps

_M = TypeVar("_M", bound=models.Model)

RETENTION_ROLE = "loyalty_retention"

REFUSE_CHANGE_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND 'purgeable' = ANY(TG_ARGV) AND current_user = '__RETENTION_ROLE__' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'TRUNCATE' AND pg_has_role(
        current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = TG_RELID), 'USAGE'
    ) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
""".replace("__RETENTION_ROLE__", RETENTION_ROLE)

GUARD_UPDATE_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_guard_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := to_jsonb(OLD);
    new_row jsonb := to_jsonb(NEW);
    spec text;
    col text;
    mutable text[] := '{}';
BEGIN
    FOREACH spec IN ARRAY TG_ARGV LOOP
        col := rtrim(split_part(spec, '=', 1), '!');
        mutable := mutable || col;
        CONTINUE WHEN (old_row -> col) IS NOT DISTINCT FROM (new_row -> col);
        IF right(spec, 1) = '!' AND (old_row -> col) NOT IN ('null'::jsonb, '""'::jsonb, '{}'::jsonb, '0'::jsonb) THEN
            RAISE EXCEPTION '%.% is set once: UPDATE refused', TG_TABLE_NAME, col
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF position('=' IN spec) > 0 AND NOT (
            concat(old_row ->> col, '>', new_row ->> col) = ANY(string_to_array(split_part(spec, '=', 2), '|'))
        ) THEN
            RAISE EXCEPTION '%.%: % to % refused', TG_TABLE_NAME, col, old_row ->> col, new_row ->> col
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END LOOP;
    IF (old_row - mutable) IS DISTINCT FROM (new_row - mutable) THEN
        RAISE EXCEPTION 'only % of % may change: UPDATE refused', array_to_string(mutable, ', '), TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
"""

# Rows older than a floor only, from these tables only (the retention categories of
# COMPLIANCE.md; the retention issue's policy may keep rows longer, never shorter).
# The ledger's journal (operations, transfers, lot movements) is never purged, nor the
# idempotency keys, whose saved answers verify_ledger checks each operation against.
PURGE_FLOORS = {
    "staffauth_securityevent": ("created_at", "3 years"),
    "members_membersecurityevent": ("created_at", "3 years"),
    "vouchers_voucherscan": ("created_at", "3 years"),
    "members_memberpiiaccess": ("accessed_at", "2 years"),
    "auditlog_logentry": ("timestamp", "2 years"),
    "members_consentrecord": ("created_at", "7 years"),
    "loyalty_adjustmentevent": ("created_at", "7 years"),
}

PURGE_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_purge(target regclass, cutoff timestamptz, max_rows integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    clock text;
    floor_age interval;
    deleted bigint;
BEGIN
    SELECT p.clock, p.floor_age INTO clock, floor_age
    FROM (VALUES __FLOORS__) AS p(tbl, clock, floor_age)
    WHERE p.tbl = (SELECT relname FROM pg_class WHERE oid = target);
    IF clock IS NULL THEN
        RAISE EXCEPTION '% is not purgeable', target USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF cutoff > now() - floor_age THEN
        RAISE EXCEPTION '% keeps rows for at least %: cutoff % refused', target, floor_age, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format(
        'DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %I < $1 ORDER BY %I LIMIT $2))',
        target, target, clock, clock
    ) USING cutoff, max_rows;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END;
$$;
REVOKE ALL ON FUNCTION loyalty_purge(regclass, timestamptz, integer) FROM PUBLIC;
""".replace(
    "__FLOORS__", ", ".join(f"('{table}', '{clock}', interval '{age}')" for table, (clock, age) in PURGE_FLOORS.items())
)

# A lot's ``remaining`` is a cache of its movements (which are append-only): checked
# at commit for every lot a transaction changed, so no rewrite of a lot can stand.
LOT_MATCHES_MOVEMENTS_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_lot_matches_movements() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cached bigint;
    moved bigint;
BEGIN
    SELECT remaining INTO cached FROM loyalty_pointslot WHERE id = NEW.id;
    SELECT COALESCE(SUM(delta), 0) INTO moved FROM loyalty_lotmovement WHERE lot_id = NEW.id;
    IF cached IS DISTINCT FROM moved THEN
        RAISE EXCEPTION 'lot %: remaining % differs from its movements %', NEW.id, cached, moved
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$;
"""


class AppendOnlyQuerySet(models.QuerySet[_M]):
    def update(self, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> NoReturn:
        raise TypeError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise TypeError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} rows are append-only")


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "''") + "'"


def append_only_sql(table: str, *, purgeable: bool = False, updates: tuple[str, ...] | None = None) -> list[str]:
    """The statements that protect ``table``: DELETE and TRUNCATE refused (DELETE through
    the purge function when ``purgeable``), and UPDATE refused, or, given ``updates``
    (column specs, see the module docstring), limited to those columns and their rules."""
    args = "'purgeable'" if purgeable else ""
    if updates is None:
        row_trigger = [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change({args});"
        ]
    else:
        specs = ", ".join(_quote(spec) for spec in updates)
        row_trigger = [
            f"CREATE TRIGGER {table}_append_only BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION loyalty_refuse_change({args});",
            f"CREATE TRIGGER {table}_guard BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION loyalty_guard_update({specs});",
        ]
    return [
        *_drop_sql(table),
        *row_trigger,
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION loyalty_refuse_change({args});",
    ]


def _drop_sql(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {table}_{name} ON {table};" for name in ("append_only", "guard", "no_truncate")]


def _run_on_postgres(statements: list[str], undo: list[str]) -> migrations.RunPython:
    def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)

    def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for statement in undo:
                schema_editor.execute(statement, params=None)

    return migrations.RunPython(forwards, backwards)


def append_only_triggers(*tables: str, purgeable: bool = False) -> migrations.RunPython:
    """A migration operation: PostgreSQL refuses UPDATE, DELETE and TRUNCATE on
    ``tables`` (DELETE only through the purge function when ``purgeable``). The
    migration must follow the one that defines the functions (staffauth 0003, replaced
    by loyalty 0010). Nothing on SQLite, where the Python guards above are the rule."""
    return _run_on_postgres(
        [sql for table in tables for sql in append_only_sql(table, purgeable=purgeable)],
        [sql for table in tables for sql in _drop_sql(table)],
    )


def guarded_triggers(table: str, *specs: str, purgeable: bool = False) -> migrations.RunPython:
    """A migration operation: UPDATE of ``table`` limited to ``specs``, DELETE and
    TRUNCATE refused, on PostgreSQL; nothing on SQLite."""
    return _run_on_postgres(append_only_sql(table, purgeable=purgeable, updates=specs), _drop_sql(table))

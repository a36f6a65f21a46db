"""Retention policy (COMPLIANCE.md §2): which tables each category purges, after how long.

The classification register (``compliance.register``) says which retention category each
table's rows belong to; this module lists only the logs the nightly purge may delete
(``PURGEABLE``: their clock column and whether they are append-only) and the category
periods (``RETENTION_PERIODS``: the spec's defaults, which a programme may lengthen, never
shorten: the purge function's floors are the defaults). Cutoffs are the start of the
programme-local day minus whole calendar years (29 February becomes 28 February).

Not purged here: the journal and the other transaction records (kept pseudonymous as the
financial record; COMPLIANCE.md: never purge a live account's ledger), members' personal
data (crypto-shredded by ``compliance.pii``), configuration and reference tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings


@dataclass(frozen=True)
class Rule:
    table: str
    clock: str
    years: int = 0
    days: int = 0
    # False: a mutable table the application role may delete from itself (the system
    # category); True: an append-only table, purged through loyalty_purge_batch only.
    append_only: bool = True


# The logs the purge deletes: model label -> (clock column, append-only). Their category
# comes from the register.
PURGEABLE: dict[str, tuple[str, bool]] = {
    "staffauth.SecurityEvent": ("created_at", True),
    "members.MemberSecurityEvent": ("created_at", True),
    "vouchers.VoucherScan": ("created_at", True),
    "loyalty.LedgerRefusalEvent": ("created_at", True),
    "members.MemberPiiAccess": ("accessed_at", True),
    "auditlog.LogEntry": ("timestamp", True),
    "compliance.AccessEvent": ("at", True),
    "loyalty.OutboundMessage": ("created_at", False),
    "axes.AccessLog": ("attempt_time", False),
    "axes.AccessFailureLog": ("attempt_time", False),
}

# The specification's periods (years) per category: the defaults, and the database's floors.
DEFAULT_PERIODS: dict[str, int] = {"transaction": 7, "security": 3, "access": 2, "system": 1}
CATEGORIES = ("security", "access", "system")


def period_years(category: str) -> int:
    """The category's period: ``RETENTION_PERIODS`` (years), at least the default."""
    configured = getattr(settings, "RETENTION_PERIODS", {}) or {}
    return max(int(configured.get(category, DEFAULT_PERIODS[category])), DEFAULT_PERIODS[category])


@cache
def _categories() -> dict[str, str]:
    from compliance.register import retention_of

    return {label: retention_of(apps.get_model(label)) for label in PURGEABLE}


def policy(*, floors: bool = False) -> dict[str, tuple[Rule, ...]]:
    """category -> rules, from the register's categories and the periods (``floors``: the
    defaults, which the purge function enforces)."""
    built: dict[str, list[Rule]] = {}
    for label, category in _categories().items():
        if category not in CATEGORIES:
            raise ValueError(f"{label} is purgeable but the register files it under {category!r}")
        clock, append_only = PURGEABLE[label]
        years = DEFAULT_PERIODS[category] if floors else period_years(category)
        table = apps.get_model(label)._meta.db_table
        built.setdefault(category, []).append(Rule(table, clock, years=years, append_only=append_only))
    return {category: tuple(built[category]) for category in CATEGORIES if category in built}


class _Policy(Mapping[str, tuple[Rule, ...]]):
    """``POLICY``: the policy as configured, read when used (the register needs the apps)."""

    def __getitem__(self, category: str) -> tuple[Rule, ...]:
        return policy()[category]

    def __iter__(self) -> Iterator[str]:
        return iter(policy())

    def __len__(self) -> int:
        return len(policy())


POLICY: Mapping[str, tuple[Rule, ...]] = _Policy()


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def cutoff(rule: Rule, now: datetime) -> datetime:
    """The start of the programme-local day of ``now`` minus the rule's period."""
    zone = ZoneInfo(settings.TIME_ZONE)
    today = now.astimezone(zone).date()
    day = years_before(today, rule.years) - timedelta(days=rule.days)
    return datetime.combine(day, time.min, tzinfo=zone)


def _floors_sql() -> str:
    """The database's floors: a cutoff later than these is refused by the function itself."""
    return ", ".join(
        f"('{rule.table}', '{rule.clock}', interval '{rule.years} years {rule.days} days')"
        for rules in policy(floors=True).values()
        for rule in rules
        if rule.append_only
    )


BATCH_SIZE = 1000
PURGE_BATCH_SIGNATURE = "loyalty_purge_batch(regclass, timestamptz, bigint, integer, boolean)"


# The same batch for a mutable table, run as the application role itself.
MUTABLE_BATCH_SQL = """
WITH batch AS (
    SELECT t.id::bigint AS id,
           EXISTS (
               SELECT 1 FROM compliance_legalhold h
               WHERE h.released_at IS NULL AND h.scope = 'record' AND h.table_name = %(table)s AND h.record_pk = t.id
           ) AS on_hold
    FROM {table} t WHERE t.id > %(after)s AND t.{clock} < %(cutoff)s ORDER BY t.id LIMIT %(limit)s
), gone AS (
    DELETE FROM {table} t USING batch b
    WHERE NOT %(dry)s AND NOT b.on_hold AND t.id = b.id AND t.{clock} < %(cutoff)s
    RETURNING t.id::bigint AS id
), counted AS (
    SELECT id FROM gone UNION ALL SELECT id FROM batch WHERE %(dry)s AND NOT on_hold
)
SELECT (SELECT count(*) FROM counted)::bigint,
       encode(sha256(convert_to(coalesce(
           (SELECT string_agg(%(table)s || ':' || id, E'\\n' ORDER BY id) FROM counted), ''), 'UTF8')), 'hex'),
       (SELECT min(id) FROM batch), (SELECT max(id) FROM batch),
       (SELECT count(*) FROM batch WHERE on_hold)::bigint,
       (SELECT array_agg(id ORDER BY id) FROM gone)
"""

PURGE_BATCH_FUNCTION = """
CREATE OR REPLACE FUNCTION loyalty_purge_batch(
    target regclass, cutoff timestamptz, after_pk bigint, max_rows integer, dry_run boolean
)
RETURNS TABLE(purged bigint, digest text, first_pk bigint, last_pk bigint, held bigint, ids bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    tbl text;
    nsp text;
    clock text;
    floor_age interval;
    has_member boolean;
    hold_member text := 'false';
BEGIN
    SELECT c.relname, n.nspname INTO tbl, nsp
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
    SELECT p.clock, p.floor_age INTO clock, floor_age
    FROM (VALUES __FLOORS__) AS p(relname, clock, floor_age) WHERE p.relname = tbl;
    IF clock IS NULL THEN
        RAISE EXCEPTION '% is not purgeable', target USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Start of today, programme-local, minus the floor: never a later cutoff.
    IF cutoff > (date_trunc('day', now() AT TIME ZONE '__TZ__') - floor_age) AT TIME ZONE '__TZ__' THEN
        RAISE EXCEPTION '% keeps rows for at least %: cutoff % refused', target, floor_age, cutoff
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'batch size % refused', max_rows USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT EXISTS (
        SELECT 1 FROM pg_attribute WHERE attrelid = target AND attname = 'member_id' AND NOT attisdropped
    ) INTO has_member;
    IF has_member THEN
        hold_member := 'h.scope = ''member'' AND h.member_id = t.member_id';
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH batch AS (
            SELECT t.id::bigint AS id,
                   EXISTS (
                       SELECT 1 FROM %4$I.compliance_legalhold h
                       WHERE h.released_at IS NULL
                         AND ((h.scope = 'record' AND h.table_name = %3$L AND h.record_pk = t.id) OR (%5$s))
                   ) AS on_hold
            FROM %1$s t WHERE t.id > $2 AND t.%2$I < $1 ORDER BY t.id LIMIT $3
        ), gone AS (
            DELETE FROM %1$s t USING batch b
            WHERE NOT $4 AND NOT b.on_hold AND t.id = b.id AND t.%2$I < $1
            RETURNING t.id::bigint AS id
        ), counted AS (
            SELECT id FROM gone UNION ALL SELECT id FROM batch WHERE $4 AND NOT on_hold
        )
        SELECT (SELECT count(*) FROM counted)::bigint,
               encode(sha256(convert_to(coalesce(
                   (SELECT string_agg(%3$L || ':' || id, E'\n' ORDER BY id) FROM counted), ''), 'UTF8')), 'hex'),
               (SELECT min(id) FROM batch), (SELECT max(id) FROM batch),
               (SELECT count(*) FROM batch WHERE on_hold)::bigint,
               (SELECT array_agg(id ORDER BY id) FROM gone)
    $q$, target, clock, tbl, nsp, hold_member) USING cutoff, after_pk, max_rows, dry_run;
END;
$fn$;
REVOKE ALL ON FUNCTION __SIG__ FROM PUBLIC;
"""


def purge_batch_function_sql() -> str:
    return (
        PURGE_BATCH_FUNCTION.replace("__FLOORS__", _floors_sql())
        .replace("__TZ__", settings.TIME_ZONE)
        .replace("__SIG__", PURGE_BATCH_SIGNATURE)
    )
